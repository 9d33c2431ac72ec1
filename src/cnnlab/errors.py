"""User-facing errors.

A `CnnlabError` is a user mistake (unknown name, bad value, missing or corrupt file). The CLI prints its
message without a traceback and exits with `exit_code` (2). Every message says what is wrong, where
(file, key, line) and how to fix it.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable


class CnnlabError(Exception):
    """Base class of the errors a user can fix; the CLI turns them into exit code 2."""

    exit_code = 2
    cli: str | None = None  # the message in command-line terms (flags, not Python arguments) where it differs


class ConfigError(CnnlabError, ValueError):
    """An invalid configuration: unknown key or name, bad value, inconsistent settings."""


class DataError(CnnlabError):
    """Missing, truncated or corrupt data files."""


class StorageError(CnnlabError, OSError):
    """The disk said no: full, read-only, no permission, or a file where a folder belongs."""


class PeerLost(CnnlabError):
    """Another process of a distributed run ended (killed, out of memory) in the middle of a collective.
    The run is left as it was (it reads 'crashed') and resumes from its last checkpoint. Exit code 1: not a
    mistake in the input."""

    exit_code = 1


class RunBusy(CnnlabError):
    """Another live process owns the run (or study) directory; nothing was touched. Exit code 75
    (EX_TEMPFAIL, "try again later"), so a study can tell it from a mistake."""

    exit_code = 75


def command_line(*words: object) -> str:
    """A cnnlab command as a hint prints it, ready to paste into a shell: each word shell-quoted, so a path
    with a space, a quote or a `$` stays one word ('cnnlab train --resume 'runs/my run'')."""
    return shlex.join(["cnnlab", *(str(word) for word in words)])


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(kind: str, name: str, choices: Iterable[str], origin: str = "") -> str:
    """"unknown model 'lenet' (override 'model=lenet'); did you mean 'lenet5'? Valid models: ..." in one
    place for every family."""
    choices = sorted(choices)
    guess = closest(name, choices)
    where = f" ({origin})" if origin else ""
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"unknown {kind} '{name}'{where}{hint} Valid {kind}s: {', '.join(choices)}"


def out_of_memory(exc: BaseException) -> str | None:
    """The one-line message for an allocation that failed (Python's MemoryError, torch's CPU allocator's
    RuntimeError, torch.OutOfMemoryError on a GPU), or None for any other error. A size the user chose (batch,
    image side, model width) is the usual cause: the message says which knobs lower it."""
    import re

    text = str(exc)
    if not (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or (isinstance(exc, RuntimeError) and "can't allocate memory" in text)):
        return None
    tried = re.search(r"(?:tried to allocate|Tried to allocate) ([0-9.]+) ?(bytes|[KMGT]i?B)", text)
    if tried is None:
        amount = ""
    elif tried.group(2) == "bytes":
        amount = f" (one allocation of {int(float(tried.group(1))) / 2**30:.1f} GiB)"
    else:
        amount = f" (one allocation of {tried.group(1)} {tried.group(2)})"
    return (f"out of memory{amount}: lower batch_size (--batch-size), the image size (data.image_size, "
            "--image-size) or eval_batch_size, or use a smaller model; --debug shows where")
