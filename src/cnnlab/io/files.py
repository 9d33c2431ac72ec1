"""Files, safely (cnnlab.io): size limits, the disk's OSErrors as messages, folders, atomic writes.

`atomic_write` writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
folder (POSIX rename is atomic): a crash, a kill or a full disk leaves the old file or the new one, never half
of each. The package's docstring (io/__init__.py) says what each part guarantees.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StorageError

TEMP_SUFFIX = ".tmp"
MAX_NAME = 200  # characters; the common file-name limit is 255 bytes, the rest is room for suffixes


@dataclass(frozen=True)
class Limits:
    """Upper bounds on sizes that files declare, checked before allocating or inflating anything."""

    idx_bytes: int = 4 << 30  # one IDX payload (MNIST's largest file holds 47 MB)
    pickle_bytes: int = 1 << 30  # one CIFAR batch file (the largest, CIFAR-100 'train', is 155 MB)
    archive_bytes: int = 32 << 30  # all members of one downloaded archive, unpacked (Caltech-101: 0.13 GB)
    gzip_ratio: int = 1100  # deflate cannot expand more than ~1032:1, so a larger claim is a lie
    # YAML files (configs, studies, search spaces, a run's config.yaml), checked while the file is composed,
    # before anything is built from it (config/yaml_file.py): a study of 10,000 variations is ~0.4 MB and
    # ~50,000 nodes; a "billion laughs" file of 1 KB names 10^9 nodes through its aliases
    yaml_bytes: int = 4 << 20
    yaml_nodes: int = 250_000  # counted as if every alias were written out
    yaml_aliases: int = 10_000
    yaml_depth: int = 64  # nesting levels (a study's deepest is ~5: variations, name, section, key, list)


LIMITS = Limits()


# ------------------------------------------------------------------------------------------- errors
_FIXES = {
    errno.ENOSPC: "no space left on the device; free some space (or write elsewhere) and run the command again",
    errno.EDQUOT: "the disk quota is exhausted; free some space (or write elsewhere) and run the command again",
    errno.EROFS: "the file system is read-only; write somewhere writable (e.g. --runs-dir or --dir)",
    errno.EACCES: "permission denied; write somewhere you may write (e.g. --runs-dir or --dir), or fix the permissions",
    errno.EPERM: "operation not permitted; write somewhere you may write, or fix the permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EEXIST: "a file of that name is in the way; choose another path",
    errno.EISDIR: "it is a folder, not a file; choose a file name",
    errno.ENAMETOOLONG: "the name is too long for the file system; choose a shorter one",
}


DISK_ERRORS = frozenset(_FIXES) - {errno.EEXIST}


def storage_error(exc: OSError, path: str | Path, doing: str) -> StorageError:
    """A StorageError saying what failed (`doing` 'writing', 'creating the folder', ...), where, and the fix."""
    fix = _FIXES.get(exc.errno or 0, exc.strerror or str(exc))
    return StorageError(f"cannot {doing} '{path}': {fix}")


def make_dirs(path: str | Path) -> Path:
    """`mkdir -p`, with the disk's refusals as StorageError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StorageError(f"'{path}' is a file, not a folder; choose another path or move the file away")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(f"'{path}' (or a part of it) is a file, not a folder; choose another path") from None
    except OSError as exc:
        raise storage_error(exc, path, "create the folder") from None
    return path


def check_writable(directory: str | Path, needed_bytes: int = 0) -> None:
    """Raise StorageError unless `directory` (or its nearest existing ancestor, where it would be created)
    is a folder this process can write a small file into, with `needed_bytes` free. Nothing is left behind."""
    directory = Path(directory)
    probe_in = directory
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise StorageError(f"'{probe_in}' is a file, not a folder, so '{directory}' cannot be created there; "
                           "choose another path")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_in, prefix=".cnnlab-probe.", suffix=TEMP_SUFFIX) as handle:
            handle.write(b"\0" * 65536)  # a full disk often still has inodes: only written bytes tell
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise storage_error(exc, directory, "write into") from None
    free = shutil.disk_usage(probe_in).free
    if needed_bytes and free < needed_bytes:
        raise StorageError(f"'{directory}' has {free / 2**20:,.0f} MiB free but this needs about "
                           f"{needed_bytes / 2**20:,.0f} MiB (checkpoints); free some space or write elsewhere")


# ------------------------------------------------------------------------------------ atomic writes
def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


UMASK = _umask()  # read once, at import: os.umask can only be read by setting it


def check_no_link_out(path: str | Path) -> None:
    """Raise StorageError when a folder on the way to `path` is a link inside a run directory (a folder
    holding run.json) that leads out of that run directory: `RUN/plots -> /elsewhere` would put the run's
    pictures, and whatever they replace, outside the runs folder. Links above the run (a runs folder on
    another disk) and links within it are fine; so is `path` itself being a link, which a rename replaces."""
    folder = Path(os.path.abspath(path)).parent
    for link in (folder, *folder.parents):
        if not link.is_symlink():
            continue
        run = next((a for a in link.parents if (a / "run.json").is_file()), None)
        if run is not None and not link.resolve().is_relative_to(run.resolve()):
            raise StorageError(f"'{link}' is a link to '{link.resolve()}', outside the run directory '{run}'; "
                               "cnnlab never writes through a link out of a run directory: replace the link "
                               f"with a folder (rm '{link}'), or write elsewhere")


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp_path)`, fsync it, rename it over `path`, fsync the folder. On any failure the
    temporary file is removed and `path` is as it was; a disk error becomes a StorageError. Never through
    a link out of a run directory (`check_no_link_out`)."""
    path = Path(path)
    check_no_link_out(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise storage_error(exc, path, "write") from None
    os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; a result file gets the user's usual permissions
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise storage_error(exc, path, "write") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open folders; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def keep_previous(path: Path, previous: Path) -> None:
    """Make `previous` a copy of `path` (a hard link: no bytes copied) before `path` is replaced, so the
    file before the newest survives the newest's corruption. Atomic: `previous` is old or new, never half."""
    if not path.is_file():
        return
    check_no_link_out(previous)
    if previous.is_file() and os.path.samefile(path, previous):
        return  # already the same file (the last save was cut short after this step): rename would be a no-op
    tmp = previous.with_name(f".{previous.name}.{os.getpid()}{TEMP_SUFFIX}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # file systems without hard links (FAT, some network mounts): copy
            shutil.copyfile(path, tmp)
        os.replace(tmp, previous)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise storage_error(exc, previous, "write") from None


def remove_stale_temp(*directories: Path) -> list[Path]:
    """Delete the `.*.tmp` files atomic writers left in `directories` when they were killed mid-write.
    Only safe for folders whose writers are known to be gone (their owner's lock is held by the caller)."""
    removed = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in directory.glob(f".*{TEMP_SUFFIX}"):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed
