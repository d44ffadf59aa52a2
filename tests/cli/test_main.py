import subprocess
import sys

import pytest

import nrp
from nrp.cli.main import main


def test_version_is_printed_by_the_installed_entry_point():
    result = subprocess.run([sys.executable, "-m", "nrp.cli.main", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"nrp {nrp.__version__}"


def test_help_lists_the_subcommands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "purify" in out and "attack" in out
    assert "3 some inputs skipped" in out


def test_a_command_is_required(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "required" in err and err.startswith("nrp: error: ") and err.count("\n") == 1
