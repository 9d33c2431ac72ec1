"""The command-line sessions of the documentation: found, run, compared by shape, and regenerated.

A session is a ```-fenced block whose first line starts with `$ `: commands and the output each printed.
Every session of a page runs in order, in one fresh folder per page, through a shell, with the installed
`cnnlab` (tests/test_docs_sessions.py); its output must have the page's shape: the same lines with numbers
as placeholders (timings and accuracies differ between machines), `...` standing for any number of lines.

Markers, each an HTML comment on the line before a block or picture:
- `<!-- docs-results -->`: a session that needs minutes to hours (Fashion-MNIST, CIFAR). `make test` skips
  it (and a page's later sessions may depend on it: mark those too); `make docs-results` runs it and
  writes its real output into the page, with a stamp line under it (cnnlab version, date, machine, wall).
- `<!-- docs-file: NAME -->`: the next block is written to NAME in the page's folder before the sessions
  after it run (a study file the page shows, then runs).
- `<!-- docs-picture: PATH -->`: the next line's image is the file PATH that the page's sessions wrote;
  `make docs-results` copies it into docs/, so no picture in the docs is made by hand.

The exit code a command must end with is read from what it printed: `error:` 2, `diverged:` 3,
`interrupted:` 130, otherwise 0, unless the page says `(exit N)` on a line of its own. A `^C` line in
the output sends SIGINT to the command once it has printed the lines above it (an interrupted run, then
its resume).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^( *)```[a-z]*\n(.*?)^\1```\n", re.S | re.M)
RESULTS = "<!-- docs-results -->"
FILE = re.compile(r"<!-- docs-file: ([\w./-]+) -->\n$")
PICTURE = re.compile(r"^<!-- docs-picture: (\S+) -->\n!\[[^\]]*\]\(([^)]+)\)", re.M)
STAMP = re.compile(r'^<small class="docs-stamp">.*</small>\n', re.M)
EXIT = (("cnnlab: error:", 2), ("error:", 2), ("diverged:", 3), ("interrupted:", 130))


@dataclass
class Step:
    command: str
    expected: list[str]


@dataclass
class Block:
    """A fenced block of a page: a session (steps), or a file the sessions read."""

    start: int  # offsets of the whole fenced block in the page's text
    end: int
    indent: str
    steps: list[Step] = field(default_factory=list)
    results: bool = False  # needs long runs: make docs-results, not make test
    file: str | None = None  # docs-file: written to this name in the page's folder
    text: str = ""


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        indent, body = match.group(1), match.group(2)
        lines = [line[len(indent):] if line.startswith(indent) else line for line in body.splitlines()]
        before = text[:match.start()].rstrip(" ").splitlines(keepends=True)[-1:] or [""]
        block = Block(match.start(), match.end(), indent, text="\n".join(lines) + "\n")
        named = FILE.search(before[0])
        if named:
            block.file = named.group(1)
        elif lines and lines[0].startswith("$ "):
            block.results = before[0].strip() == RESULTS
            for line in lines:
                if line.startswith("$ "):
                    block.steps.append(Step(line[2:], []))
                else:
                    block.steps[-1].expected.append(line)
        else:
            continue
        found.append(block)
    return found


def pages() -> list[Path]:
    """Every Markdown page of the docs that holds a session or a file block."""
    return sorted(p for p in DOCS.rglob("*.md") if any(b.steps or b.file for b in blocks(p.read_text())))


def shape(line: str) -> str:
    """Numbers become '#', runs of spaces one space: what stays is the line's shape."""
    return " ".join(re.sub(r"\d[\d,]*(\.\d+)?", "#", line).split())


def fits(expected: list[str], actual: list[str], shape: Callable[[str], str] = shape) -> bool:
    """Whether `actual` has `expected`'s shape (as `shape` reads a line), '...' matching any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(fits(expected[1:], actual[i:], shape) for i in range(len(actual) + 1))
    return bool(actual) and shape(expected[0]) == shape(actual[0]) and fits(expected[1:], actual[1:], shape)


def printed(expected: list[str]) -> list[str]:
    """The lines a command is expected to print: the page's, less an `(exit N)` line."""
    return [line for line in expected if not re.fullmatch(r"\(exit \d+\)", line)]


def expected_exit(expected: list[str]) -> int:
    for line in expected:  # `(exit N)`: a page may say the code where the output does not show it
        if re.fullmatch(r"\(exit \d+\)", line):
            return int(line[6:-1])
    for line in reversed(expected):
        for prefix, code in EXIT:
            if line.startswith(prefix):
                return code
    return 0


def environment() -> dict[str, str]:
    """The reader's shell: the installed `cnnlab` first on PATH, a wide terminal, no data root of the
    machine's own (every page says where its data comes from)."""
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_DATA"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", COLUMNS="200",
               PYTHONUNBUFFERED="1")
    return env


def run_step(step: Step, folder: Path, timeout: float) -> tuple[int, list[str]]:
    """Run one command in `folder`; with a `^C` in its expected output, SIGINT once the lines above it
    have been printed. Returns the exit code and the printed lines (stdout and stderr, interleaved)."""
    interrupt_after = step.expected.index("^C") if "^C" in step.expected else None
    process = subprocess.Popen(["bash", "-c", f"exec {step.command}" if interrupt_after is not None else step.command],
                               cwd=folder, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=interrupt_after is not None)
    lines: list[str] = []
    timer = threading.Timer(timeout, process.kill)  # a command that hangs silently is ended too
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if interrupt_after is not None and len(lines) == interrupt_after:
                process.send_signal(signal.SIGINT)
                lines.append("^C")
        code = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if code == -signal.SIGKILL:
        lines.append(f"(killed after {timeout:.0f} s)")
    return code, lines


def prepare(folder: Path) -> None:
    """A reader's folder: the repository's study files and benchmarks at hand, as in a clone."""
    for name in ("studies", "benchmarks"):
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)


def check_page(page: Path, folder: Path, timeout: float = 120) -> list[str]:
    """Run the quick sessions of `page` in `folder`; the mismatches, each as a message (none: it fits)."""
    prepare(folder)
    problems = []
    for block in blocks(page.read_text()):
        if block.file:
            (folder / block.file).parent.mkdir(parents=True, exist_ok=True)
            (folder / block.file).write_text(block.text)
            continue
        if block.results:
            continue
        for step in block.steps:
            code, actual = run_step(step, folder, timeout)
            if code != expected_exit(step.expected):
                problems.append(f"$ {step.command}\nexited {code}, expected {expected_exit(step.expected)}:\n"
                                + "\n".join(actual[-30:]))
            elif not fits(printed(step.expected), actual):
                problems.append(f"$ {step.command}\npage:\n" + "\n".join(step.expected) + "\nnow:\n"
                                + "\n".join(actual))
    if not any(block.results for block in blocks(page.read_text())):  # else a long session may draw them
        problems += [f"{source}: the picture the page shows was not drawn by its sessions"
                     for source, _ in PICTURE.findall(page.read_text()) if not (folder / source).is_file()]
    return problems


# ------------------------------------------------------------------------------------------ docs-results
def machine() -> str:
    """The CPU model and the cores this process may use ('AMD EPYC 7B13, 2 cores')."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores{gpu}"


def stamp(seconds: float, kept: bool = False) -> str:
    from cnnlab import __version__

    wall = (f"{seconds:,.0f} s wall for this pass, which reused the runs an interrupted pass had finished"
            if kept else f"{seconds:,.0f} s wall")
    return (f'<small class="docs-stamp">Output of cnnlab {__version__}, {time.strftime("%Y-%m-%d")}, '
            f"{machine()}, {wall} (regenerated by <code>make docs-results</code>).</small>\n")


def _write_page(page: Path, text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    page.write_text(text)
    return text


def regenerate(page: Path, folder: Path, timeout: float, quick_too: bool = False, quick_only: bool = False,
               kept: bool = False, matching: str = "") -> None:
    """Run every session of `page` in `folder` and write the real output of its docs-results sessions,
    each stamped, into the page (with `quick_too`, the output of its quick sessions too, unstamped: they
    are checked by shape in every test run); copy the pictures its sessions drew (docs-picture) into docs/.
    `quick_only` rewrites the quick sessions alone and leaves the docs-results ones (and their pictures) as
    they are; `kept` says in the stamps that the folder kept an earlier pass's finished runs; `matching` (a
    regular expression) reruns only the docs-results sessions whose first command it finds, the others left
    as they are."""
    text = page.read_text()
    prepare(folder)
    edits: list[tuple[int, int, str]] = []
    for block in blocks(text):
        if block.file:
            (folder / block.file).write_text(block.text)
            continue
        if block.results and (quick_only or (matching and not re.search(matching, block.steps[0].command))):
            continue
        started, lines = time.monotonic(), []
        for step in block.steps:
            print(f"{page.name}: $ {step.command}", flush=True)
            code, actual = run_step(step, folder, timeout)
            if code != expected_exit(step.expected) and not quick_too:
                _write_page(page, text, edits)  # what the sessions before this one wrote is kept
                sys.exit(f"$ {step.command} exited {code}:\n" + "\n".join(actual[-30:]))
            lines += [f"$ {step.command}", *actual]
            if code != expected_exit(actual):  # a code the output does not say: the page says it
                lines.append(f"(exit {code})")
        if block.results or quick_too or quick_only:
            body = "".join(f"{block.indent}{line}\n" if line else "\n" for line in lines)
            fence = f"{block.indent}```\n"
            after = STAMP.match(text, block.end)
            stamped = block.indent + stamp(time.monotonic() - started, kept) if block.results else ""
            edits.append((block.start, after.end() if after and block.results else block.end,
                          fence + body + fence + stamped))
    text = _write_page(page, text, edits)
    for source, target in PICTURE.findall(text):
        if (quick_only or matching) and not (folder / source).is_file():
            continue  # drawn by a docs-results session this pass did not run
        shutil.copyfile(folder / source, (page.parent / target).resolve())
        print(f"copied {source} -> {(page.parent / target).resolve()}")


def main() -> None:
    parser = argparse.ArgumentParser(description="make docs-results: rerun the docs' long sessions, stamp them")
    parser.add_argument("pages", nargs="*", type=Path, help="pages to regenerate (default: every page with one)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "docs-results",
                        help="where the sessions run (one folder per page, emptied first)")
    parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds one command may take")
    parser.add_argument("--quick-too", action="store_true",
                        help="also rewrite the quick sessions' output (after a change of what a command prints)")
    parser.add_argument("--quick-only", action="store_true",
                        help="rewrite the quick sessions' output only; leave the docs-results sessions as they are")
    parser.add_argument("--matching", default="", metavar="REGEX",
                        help="rerun only the docs-results sessions whose first command matches; leave the others")
    parser.add_argument("--keep", action="store_true",
                        help="do not empty the page's folder: a study resumes the runs an interrupted pass finished "
                             "(the stamps say so)")
    args = parser.parse_args()
    chosen = [p.resolve() for p in args.pages] or [p for p in pages() if any(b.results for b in blocks(p.read_text()))]
    for page in chosen:
        folder = args.work / page.relative_to(DOCS).with_suffix("")
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        regenerate(page, folder, args.timeout, args.quick_too, args.quick_only, args.keep, args.matching)


if __name__ == "__main__":
    main()
