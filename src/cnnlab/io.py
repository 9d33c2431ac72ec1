"""Files, safely: atomic writes, exclusive locks, plain names, size limits, and OS errors as messages.

- `atomic_write` writes a temporary file beside the target, fsyncs it, renames it over the target and
  fsyncs the folder (POSIX rename is atomic): a crash, a kill or a full disk leaves the old file or the
  new one, never half of each. Temporary names are `.<target>.<random>.tmp`; `remove_stale_temp` deletes
  those of writers that are gone (called by the owner of a run once it holds the run's lock).
- `FileLock` is an exclusive `fcntl.flock` on a lock file that is never replaced or deleted: the kernel
  drops the lock when its process dies, however it dies (kill -9 included), so a lock that can be taken
  means its previous owner is gone. flock works across processes on one machine and on NFSv4 and
  Lustre mounts shared by several machines (not on NFSv3 without a lock daemon).
- `check_name` keeps a user-given name one plain path component, so nothing is written or deleted
  outside the folder it is meant for.
- `LIMITS` bounds every size a file declares (IDX headers, pickle strings, archive members) before
  anything is allocated or inflated, and every YAML file cnnlab reads (bytes, nodes, aliases, depth).
- `check_no_link_out` refuses a write into a run directory through a link that leads out of it (RUN/plots
  -> /elsewhere): every atomic write checks it, so no picture, record or checkpoint lands outside.
- `storage_error` turns the disk's OSErrors (full, read-only, no permission, a file where a folder
  belongs) into a `StorageError` that names the path and the fix: the CLI prints it and exits 2.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, RunBusy, StorageError

try:  # POSIX; on Windows locks are not available and FileLock says so
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

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


# -------------------------------------------------------------------------------------------- locks
def owner_identity() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}


class FileLock:
    """An exclusive flock on `path` (created if absent, never deleted). `acquire()` does not wait by default:
    it returns False when another process (or another FileLock in this one) holds the lock. The owner's
    pid, host and start time are written into the file, for the messages of those who find it taken."""

    def __init__(self, path: str | Path, what: str = "") -> None:
        self.path = Path(path)
        self.what = what or str(self.path.parent)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> bool:
        if fcntl is None:  # pragma: no cover
            raise StorageError("run locks need fcntl (Linux, macOS, BSD); Windows is not supported")
        if self._fd is not None:
            return True
        make_dirs(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(exc, self.path, "create the lock file") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise storage_error(exc, self.path, "lock") from None
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        self._fd = fd
        payload = json.dumps(owner_identity()).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, payload, 0)
        except OSError:
            pass  # the owner note is for messages only; the lock itself is held
        return True

    def require(self, timeout: float = 0.0) -> FileLock:
        """acquire() or raise RunBusy naming the owner."""
        if not self.acquire(timeout):
            raise RunBusy(f"{self.what} is in use by {describe_owner(self.owner())}; wait for that process to "
                          "finish (or stop it), or use another name")
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def owner(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def held_elsewhere(self) -> bool:
        """Whether some other holder has the lock right now (a probe: takes and drops it at once)."""
        if self._fd is not None or not self.path.exists():
            return False
        probe = FileLock(self.path)
        if probe.acquire():
            probe.release()
            return False
        return True

    def __enter__(self) -> FileLock:
        return self.require()

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_owner(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another process"
    return f"pid {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')})"


# ------------------------------------------------------------------------------------------ outputs
MARKER_KEY = "written_by"  # in the JSON files a command may later replace: {"written_by": "cnnlab bench", ...}


def written_by(path: Path, marker: str) -> bool:
    """Whether `path` is this command's own earlier output, by its marker: a folder holds a file named
    `marker` (export-samples' .cnnlab-samples); a JSON file says "written_by": `marker` at its top level, or
    in each of its rows. Anything else is someone else's, whatever its name."""
    if path.is_dir():
        return (path / marker).is_file()
    try:
        if path.stat().st_size > 16 << 20:  # ours are kilobytes; no need to parse a large stranger
            return False
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    rows = data if isinstance(data, list) else [data]
    return bool(rows) and all(isinstance(row, dict) and row.get(MARKER_KEY) == marker for row in rows)


def check_output_dir(directory: Path, marker: str, option: str) -> Path:
    """An output folder is new, empty, or one this command wrote before (it holds `marker`): cnnlab never
    writes into (or over) a folder of someone else's files."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{option} '{directory}' is a file, not a folder; choose another {option}")
    if directory.is_dir() and any(directory.iterdir()) and not written_by(directory, marker):
        raise ConfigError(f"{option} '{directory}' is a folder of other files (no {marker} in it); cnnlab writes "
                          f"only into new folders or its own: choose another {option}")
    check_writable(directory)
    return directory


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...] = (), marker: str | None = None) -> Path:
    """An output file may replace a file, never a folder, and has one of `suffixes` (when given); with a
    `marker`, only a file this command wrote (`written_by`). It is never one of a run directory's own files
    (run.json, config.yaml, metrics, evaluations, checkpoints): a run directory is cnnlab's record of a run,
    and `--out` must not be able to destroy it."""
    if path.is_dir():
        raise ConfigError(f"{option} '{path}' is a folder; give a file name")
    for folder in (path.parent, path.parent.parent):
        if (folder / "run.json").is_file() and not path.resolve().is_relative_to((folder / "plots").resolve()):
            raise ConfigError(f"{option} '{path}' is inside the run directory '{folder}', whose files are the run's "
                              "record; write it elsewhere (e.g. runs/NAME.json) or into its plots/ folder")
    if marker and path.exists() and not written_by(path, marker):
        raise ConfigError(f"{option} '{path}' exists and is not a file {marker} wrote (no \"{MARKER_KEY}\": "
                          f"\"{marker}\" in it); cnnlab replaces only its own files: choose another {option}, "
                          "or move that file away")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} '{path}' must end in {' or '.join(suffixes)}")
    check_writable(path.parent)
    return path


# -------------------------------------------------------------------------------------------- names
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


def check_name(name: str, what: str = "run name") -> str:
    """`name` if it is one plain folder name, else a ConfigError that says why and what is allowed."""
    shown = name if len(name) <= 48 else f"{name[:40]}... ({len(name)} characters)"
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_NAME:
        problem = f"it is {len(name)} characters long (at most {MAX_NAME})"
    elif "/" in name or "\\" in name or "\0" in name:
        problem = "it contains a path separator or NUL, so it is not one folder name"
    elif name.startswith("."):
        problem = "it starts with '.' ('.' and '..' are not names, and hidden folders are not runs)"
    elif name.startswith("-"):
        problem = "it starts with '-', which reads as an option"
    elif not _NAME.fullmatch(name):
        odd = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9._+-]", c)})
        problem = f"it contains {', '.join(repr(c) for c in odd[:5])}"
    else:
        return name
    raise ConfigError(f"{what} {shown!r} is not allowed: {problem}. A {what} is one plain folder name of ASCII "
                      f"letters, digits and . _ + - (at most {MAX_NAME}, not starting with '.' or '-'), "
                      "e.g. fmnist_lr0.1")


def is_inside(path: Path, root: Path) -> bool:
    """Whether `path` (links resolved) lies strictly inside `root`."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path != root and path.is_relative_to(root)
