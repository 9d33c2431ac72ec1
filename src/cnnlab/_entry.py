"""The `cnnlab` program's entry point (`cnnlab`, `python -m cnnlab`), kept light.

Loading torch and cnnlab takes ~2 s. A Ctrl-C in that time used to surface as a KeyboardInterrupt traceback
from deep inside torch's import; nothing has been written yet, so the program simply ends, as the terminal
expects (SIGINT's default action). Once loaded, cnnlab's own handling applies: a stop request while a run
trains (train/interrupts.py), "interrupted" and exit 130 elsewhere (cli/__init__.py).
"""

from __future__ import annotations

import signal


def run() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    from .cli import run as program

    signal.signal(signal.SIGINT, previous)
    program()
