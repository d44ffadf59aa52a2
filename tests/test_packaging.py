"""The install the README gives: the test extra downgrades nothing, and CI runs the README's test command."""

import re
from importlib.metadata import requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# torchattacks releases whose metadata pins requests~=2.25.1 (downgrading requests, urllib3 and idna).
PINNING_REQUESTS = ("3.4.0", "3.5.0", "3.5.1")


def _extra(name: str) -> dict[str, Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return {requirement.name: requirement for requirement in map(Requirement, extras[name])}


def test_the_test_extra_admits_no_torchattacks_that_pins_requests():
    specifier = _extra("test")["torchattacks"].specifier
    assert not any(specifier.contains(release) for release in PINNING_REQUESTS)
    assert specifier.contains("3.3.0")
    assert _extra("bench")["torchattacks"].specifier == specifier  # so [test,bench] resolve together


def test_the_installed_torchattacks_leaves_requests_alone():
    assert _extra("test")["torchattacks"].specifier.contains(version("torchattacks"))
    pinned = [line for line in requires("torchattacks") or [] if Requirement(line).name == "requests"]
    assert pinned == []


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, flags=re.DOTALL).group(1)
    test_line = next(line for line in block.splitlines() if "[test]" in line)
    commands = [part.strip() for part in test_line.split("#")[0].split("&&")]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    for command in commands:
        assert any(line.startswith(command) for line in ci), f"{command!r} is not what .ci/run runs"
