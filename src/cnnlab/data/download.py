"""`cnnlab data download NAME`: the official files, checked before anything is unpacked.

Each file is fetched to `<name>.part` (a partial file is resumed with an HTTP Range request), its MD5
checked against the published checksum (the ones torchvision uses), and only then renamed into place; a
mismatch deletes the file and says so. Archives are unpacked only after every member has been checked:
absolute paths, '..' components, links pointing outside the target and device files are refused before a
single file is written (path traversal, "zip slip"). Mirrors are tried in order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ConfigError, DataError
from ..io import LIMITS

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    filename: str
    md5: str
    urls: tuple[str, ...]  # mirrors, tried in order
    target: str  # folder under the data root that the file is saved (or unpacked) into
    extract: bool = False
    nested: tuple[str, ...] = ()  # archives inside the archive to unpack too (relative to target)


_MNIST = ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")
_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
RESOURCES: dict[str, list[Resource]] = {
    "mnist": [
        Resource(name, md5, tuple(base + name for base in _MNIST), "mnist")
        for name, md5 in (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                          ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                          ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                          ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"))
    ],
    "fashion-mnist": [
        Resource(name, md5, tuple(base + name for base in _FASHION), "fashion-mnist")
        for name, md5 in (("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                          ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                          ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                          ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"))
    ],
    "cifar10": [Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                         ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), ".", extract=True)],
    "cifar100": [Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                          ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",), ".", extract=True)],
    "caltech101": [Resource("caltech-101.zip", "3138e1922a9193bfa496528edbbc45d0",
                            ("https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",), "caltech101",
                            extract=True, nested=("caltech-101/101_ObjectCategories.tar.gz",))],
}


def download_dataset(name: str, root: Path, mirror: str | None = None, progress: bool = True) -> list[Path]:
    """Fetch, verify and unpack every file of dataset `name` under `root`; returns the files fetched."""
    if name not in RESOURCES:
        raise ConfigError(f"no download is known for dataset '{name}'; downloadable: {', '.join(sorted(RESOURCES))}")
    fetched = []
    for resource in RESOURCES[name]:
        urls = (mirror.rstrip("/") + "/" + resource.filename,) if mirror else resource.urls
        target = (root / resource.target).resolve()
        target.mkdir(parents=True, exist_ok=True)
        path = fetch(urls, target / resource.filename, resource.md5, progress)
        if resource.extract:
            extract(path, target)
            for inner in resource.nested:
                extract(target / inner, target)
        fetched.append(path)
    return fetched


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(urls: tuple[str, ...], dest: Path, md5: str, progress: bool = True) -> Path:
    """Download to dest.part (resuming), check the MD5, rename to dest. A complete dest is kept."""
    if dest.is_file() and md5sum(dest) == md5:
        return dest
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            _transfer(url, part, progress)
            break
        except urllib.error.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    else:
        kept = f"\nThe partial file {part} is kept; run the command again to resume." if part.exists() else ""
        raise DataError(f"could not download {dest.name}:\n  " + "\n  ".join(errors) + kept)
    actual = md5sum(part)
    if actual != md5:
        part.unlink()
        raise DataError(f"{dest.name}: checksum mismatch (MD5 {actual}, expected {md5}); the corrupt download "
                        "was deleted. Run the command again, or try another mirror with --mirror URL.")
    os.replace(part, dest)
    return dest


def _transfer(url: str, part: Path, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "cnnlab", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            return
        raise
    with response:
        resumed = have and response.status == 206
        total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
        with open(part, "ab" if resumed else "wb") as handle:
            for block in _blocks(response, total, have if resumed else 0, part.name, progress):
                handle.write(block)


def _blocks(response, total: int, start: int, name: str, progress: bool):
    reader = iter(lambda: response.read(_CHUNK), b"")
    if not progress:
        yield from reader
        return
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True,
                  disable=not os.isatty(2)) as bar:
        task = bar.add_task(name, total=total or None, completed=start)
        for block in reader:
            bar.advance(task, len(block))
            yield block


# ---------------------------------------------------------------------------------------- archives
def extract(archive: Path, target: Path) -> None:
    """Unpack a .tar(.gz|.bz2|.xz) or .zip into `target` after checking every member."""
    target = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                _check_member(archive, info.filename, target)
                if info.compress_size and info.file_size > info.compress_size * LIMITS.gzip_ratio:
                    raise DataError(f"{archive}: member '{info.filename}' claims {info.file_size:,} bytes from "
                                    f"{info.compress_size:,} compressed (a zip bomb); nothing was extracted")
            _check_unpacked_size(archive, sum(info.file_size for info in bundle.infolist()), target)
            bundle.extractall(target)
        return
    try:
        tar = tarfile.open(archive)
    except tarfile.TarError as exc:
        raise DataError(f"{archive}: not a tar or zip archive ({exc})") from None
    with tar:
        members = tar.getmembers()
        for member in members:
            _check_tar_member(archive, member, target)
        _check_unpacked_size(archive, sum(member.size for member in members if member.isfile()), target)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # Python without extraction filters: the checks above are the guard
            tar.extractall(target, members=members)


def _check_unpacked_size(archive: Path, total: int, target: Path) -> None:
    """The members' declared sizes, summed, against LIMITS.archive_bytes and the free space, before unpacking."""
    if total > LIMITS.archive_bytes:
        raise DataError(f"{archive}: its members declare {total:,} bytes unpacked, more than the "
                        f"{LIMITS.archive_bytes:,} a dataset archive may unpack to here; nothing was extracted")
    free = shutil.disk_usage(target).free
    if total > free:
        raise DataError(f"{archive}: unpacking needs {total / 2**20:,.0f} MiB but {target} has "
                        f"{free / 2**20:,.0f} MiB free; free some space and run the command again")


def _check_member(archive: Path, name: str, target: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    destination = (target / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not destination.is_relative_to(target):
        raise DataError(f"{archive}: refusing to unpack: member '{name}' would be written outside {target} "
                        "(path traversal); nothing was extracted")
    return destination


def _check_tar_member(archive: Path, member: tarfile.TarInfo, target: Path) -> None:
    destination = _check_member(archive, member.name, target)
    if member.isdev() or member.isfifo():
        raise DataError(f"{archive}: refusing to unpack device or pipe '{member.name}'; nothing was extracted")
    if member.issym() or member.islnk():
        link_base = destination.parent if member.issym() else target
        if not (link_base / member.linkname).resolve().is_relative_to(target):
            raise DataError(f"{archive}: refusing to unpack link '{member.name}' -> '{member.linkname}' pointing "
                            f"outside {target}; nothing was extracted")
