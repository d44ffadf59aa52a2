"""Pixel units: the command line and config files speak the paper's 0-255 units, the Python API [0, 1]."""

# eps = 16 on the command line is eps = 16 / PIXEL_SCALE in Python.
PIXEL_SCALE = 255.0
