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

from .files import (
    DISK_ERRORS,
    LIMITS,
    MAX_NAME,
    TEMP_SUFFIX,
    UMASK,
    Limits,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_no_link_out,
    check_writable,
    fsync_dir,
    keep_previous,
    make_dirs,
    remove_stale_temp,
    storage_error,
)
from .locks import FileLock, describe_owner, owner_identity
from .outputs import MARKER_KEY, check_name, check_output_dir, check_output_file, is_inside, written_by

__all__ = [
    "DISK_ERRORS", "LIMITS", "MARKER_KEY", "MAX_NAME", "TEMP_SUFFIX", "UMASK", "FileLock", "Limits", "atomic_write",
    "atomic_write_json", "atomic_write_text", "check_name", "check_no_link_out", "check_output_dir",
    "check_output_file", "check_writable", "describe_owner", "fsync_dir", "is_inside", "keep_previous", "make_dirs",
    "owner_identity", "remove_stale_temp", "storage_error", "written_by",
]
