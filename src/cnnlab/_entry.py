"""The `cnnlab` program's entry point (`cnnlab`, `python -m cnnlab`), kept light.

Loading torch and cnnlab takes ~2 s. A Ctrl-C in that time used to surface as a KeyboardInterrupt traceback
from deep inside torch's import; nothing has been written yet, so the program simply ends, as the terminal
expects (SIGINT's default action). Once loaded, cnnlab's own handling applies: a stop request while a run
trains (train/interrupts.py), "interrupted" and exit 130 elsewhere (cli/__init__.py).
"""

from __future__ import annotations

import signal
import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:  # what scripts and bug reports ask first: answered without loading torch
        from ._version import __version__

        print(f"cnnlab {__version__}")
        return
    from .parent import follow_parent_from_environment

    follow_parent_from_environment()  # a --jobs worker ends with its study, even while it is still loading
    # only where Python's own Ctrl-C handling is in place: a background job of a script starts with SIGINT
    # ignored (so that a Ctrl-C meant for the foreground spares it), and stays so
    loading = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if loading:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    from .cli import run as program

    if loading:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    program()
