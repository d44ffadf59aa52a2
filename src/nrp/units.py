"""Pixel units: the command line and config files speak the paper's 0-255 units, the Python API [0, 1]."""

from nrp.errors import UsageError

# eps = 16 on the command line is eps = 16 / PIXEL_SCALE in Python.
PIXEL_SCALE = 255.0


def check_pixel_budget(name: str, value: float) -> None:
    """Refuse a budget outside [0, 255] pixel units, naming the flag or config key."""
    if not 0 <= value <= PIXEL_SCALE:
        raise UsageError(f"{name} must be in [0, 255] pixel units, got {value:g}")
