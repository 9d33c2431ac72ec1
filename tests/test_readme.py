"""The README's short examples, run as written (in a fresh folder, through a shell, the installed `cnnlab`):
every block marked `<!-- readme-test -->` is a session of `$ command` lines and their output. Each command
must succeed and print output of the README's shape: the same lines with numbers as placeholders (timings
and accuracies differ between machines), `...` standing for any number of lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- readme-test -->"


def sessions() -> list[list[tuple[str, list[str]]]]:
    text = README.read_text()
    found = []
    for block in re.findall(re.escape(MARK) + r"\n```\n(.*?)```", text, flags=re.S):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        found.append(steps)
    return found


def shape(line: str) -> str:
    """Numbers become '#', runs of spaces one space: what stays is the line's shape."""
    return " ".join(re.sub(r"\d[\d,]*(\.\d+)?", "#", line).split())


def fits(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` has `expected`'s shape, '...' matching any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(fits(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and shape(expected[0]) == shape(actual[0]) and fits(expected[1:], actual[1:])


def test_the_readme_has_tested_examples() -> None:
    assert len(sessions()) >= 1 and all(steps for steps in sessions())


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(sessions())))
def test_a_readme_session_runs_as_written(index: int, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "200"}
    for command, expected in sessions()[index]:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        actual = (done.stdout + done.stderr).rstrip("\n").splitlines()
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert fits(expected, actual), f"$ {command}\nREADME:\n" + "\n".join(expected) + "\nnow:\n" + "\n".join(actual)
