"""cnnlab's messages: one `logging` logger, 'cnnlab', with a child per package ('cnnlab.train' says each
epoch, 'cnnlab.runs' where the data came from and notes on the run, 'cnnlab.experiments' how a study goes).

The library only logs. It prints nothing unless asked: the `cnnlab` command asks (`printing()`, around
each command), a notebook or script asks with `cnnlab.show_messages()` or any `logging` configuration of
its own (the records propagate to the root logger as usual), and pytest's caplog sees them. `quiet()`
silences a run's chatter (epochs, data, notes) for a while, as `--quiet` and studies' runs do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

LOGGER = logging.getLogger("cnnlab")
LOGGER.addHandler(logging.NullHandler())  # a library's rule: no output, and no 'no handler' warning
RUN_LOGGERS = ("cnnlab.train", "cnnlab.runs")  # what `quiet` silences


def get(name: str) -> logging.Logger:
    """The logger of a cnnlab module (`__name__`), or of a part ('train')."""
    return logging.getLogger(name if name.startswith("cnnlab") else f"cnnlab.{name}")


class StdoutHandler(logging.Handler):
    """Each message as a line on the current `sys.stdout` (looked up per message, so a redirection, pytest's
    capture and rich's live display all get it). A reader that left (`cnnlab train | head`) silences
    stdout for the rest of the process: the run goes on."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except BrokenPipeError:
            silence_stdout()
        except Exception:
            self.handleError(record)


def _installed() -> StdoutHandler | None:
    return next((h for h in LOGGER.handlers if isinstance(h, StdoutHandler)), None)


def show_messages(level: int = logging.INFO) -> StdoutHandler:
    """Print cnnlab's messages (per-epoch lines, notes, study progress) on stdout from now on, as the
    command line does; for notebooks and scripts. Returns the handler (LOGGER.removeHandler undoes it)."""
    handler = _installed()
    if handler is None:
        handler = StdoutHandler()
        LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    return handler


@contextlib.contextmanager
def printing(level: int = logging.INFO) -> Iterator[None]:
    """cnnlab's messages on stdout inside (the `cnnlab` command, while it runs one command)."""
    installed, previous = _installed(), LOGGER.level
    handler = show_messages(level)
    try:
        yield
    finally:
        if installed is None:
            LOGGER.removeHandler(handler)
        LOGGER.setLevel(previous)


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """No per-epoch lines, data lines or notes of runs inside (warnings and errors still pass)."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous):
            logger.setLevel(level)


def on_terminal(logger: logging.Logger) -> bool:
    """Whether `logger`'s info messages are printed by `printing()` onto a terminal: then a live progress
    bar may be drawn beside them."""
    return logger.isEnabledFor(logging.INFO) and _installed() is not None and sys.stdout.isatty()


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader has gone, so later messages cannot fail the run."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a replaced sys.stdout): nothing to point elsewhere
        pass
