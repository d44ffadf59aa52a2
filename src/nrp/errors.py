"""User-facing errors: each carries one line that names the problem and, where possible, the fix."""


class NRPError(Exception):
    """Base class of the errors the command line reports as one line, without a traceback."""


class InputError(NRPError):
    """An input path or argument that cannot be used (missing file, out-of-range value, output clash)."""


class InputTooSmallError(InputError):
    """An image smaller than an operation needs (a filter window, DIM's resize range): such images are skipped."""


class ParameterError(InputError):
    """An argument out of its range: ``parameter`` names it, so the command line can name its flag and an
    experiment file its key."""

    def __init__(self, message: str, parameter: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter


class ImageDecodeError(NRPError):
    """A file that could not be decoded as an image."""


class CheckpointError(NRPError):
    """A weights file that is missing, unreadable, or does not fit the requested network."""


class WeightsUnavailableError(NRPError):
    """Pretrained weights that are neither in the local cache nor downloadable."""


class UsageError(InputError):
    """A bad argument or configuration value (out of range, not finite, inconsistent): exit code 2, before any work."""


class TrainingDivergedError(NRPError):
    """Training stopped because a loss or gradient became non-finite (NaN or infinite)."""
