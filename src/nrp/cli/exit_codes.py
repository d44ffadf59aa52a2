"""Exit codes of the ``nrp`` command (documented in README.md, "Exit codes", and docs/integrity.md)."""

OK = 0
ERROR = 1  # a one-line error was printed; nothing or only complete outputs were written
USAGE = 2  # bad arguments (argparse's convention)
SKIPPED = 3  # the run finished but some inputs could not be decoded and were skipped
INTERRUPTED = 130  # Ctrl-C; outputs written so far are complete, a re-run resumes
