"""Exclusive locks (cnnlab.io): `FileLock`, an flock on a lock file that is never replaced or deleted, and
who holds it (`owner_identity`, `describe_owner`)."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import RunBusy, StorageError
from .files import make_dirs, storage_error

try:  # POSIX; on Windows locks are not available and FileLock says so
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


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
