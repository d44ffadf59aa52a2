"""The ``nrp`` command line."""
