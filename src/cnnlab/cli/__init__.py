"""The `cnnlab` command: parse -> call `cnnlab.api` -> print. One module per command group, each with
`register(subparsers)`; nothing here computes anything.

Exit codes: 0 done, 2 user mistake (bad config, missing data; one message, no traceback unless --debug),
3 the run diverged, 75 the run is in use by another process, 130/143 interrupted by SIGINT/SIGTERM
(resume with --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import api
from .._version import __version__
from ..errors import CnnlabError, out_of_memory
from ..io import DISK_ERRORS, storage_error
from . import average, catalog, checks, data, export, optim, studies, training, transfer, tune, viz

GROUPS = (training, checks, catalog, data, viz, optim, studies, tune, transfer, export, average)


def run() -> None:
    """The `cnnlab` program: main(), then exit without the interpreter's teardown. Tearing down torch
    takes ~1 s (measured: `import torch` alone, torch 2.14), which a command that has written and closed
    every file does not need; it is what made `cnnlab train` take 2 s to exit after SIGTERM."""
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `cnnlab ... | head`: the reader left; say nothing more, as other tools do
        code = 141  # 128 + SIGPIPE
    except KeyboardInterrupt:  # outside a command's own handling: while parsing or printing help, or flushing
        code = 130
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `cnnlab train --name x epochs=3`: overrides may also follow the options
    overrides = all("=" in e and not e.startswith("-") for e in extra)
    if extra and isinstance(getattr(args, "items", None), list) and overrides:
        args.items += extra
    elif extra:
        hint = _key_value_hint(extra, list(sys.argv[1:] if argv is None else argv))
        if hint and getattr(args, "handler", None):
            print(f"cnnlab: error: {hint}", file=sys.stderr)
            return 2
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        with api.printing():  # the library's messages (epochs, notes, study progress) on stdout
            return int(args.handler(args) or 0)
    except CnnlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc.cli or exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the disk said no somewhere a library wrote for us: still one message and exit 2
        if args.debug or exc.errno not in DISK_ERRORS:
            raise
        print(f"error: {storage_error(exc, exc.filename or 'a file', 'use')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:  # a size the user chose did not fit: one line, exit 2
        message = out_of_memory(exc)
        if args.debug or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def _key_value_hint(extra: Sequence[str], argv: list[str]) -> str | None:
    """`cnnlab train --epochs 3`: config options are key=value, not flags; say so with the fix."""
    flags = [e for e in extra if e.startswith("--") and len(e) > 2]
    if not flags:
        return None
    fixes = []
    for flag in flags:
        key, _, value = flag[2:].partition("=")
        at = argv.index(flag) if flag in argv else -1
        if not value and 0 <= at < len(argv) - 1 and not argv[at + 1].startswith("-"):
            value = argv[at + 1]
        key = {"data-root": "data.root"}.get(key, key.replace("-", "_"))
        fixes.append(f"{key}={value or 'VALUE'}")
    return (f"{', '.join(flags)}: no such option; config options are key=value: {' '.join(fixes)} "
            "(`--help` lists the options)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="Build, train, evaluate and compare CNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors too")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in GROUPS:
        module.register(sub)
    return parser
