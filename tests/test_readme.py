"""The README's short examples, run as written (in a fresh folder, through a shell, the installed `cnnlab`):
every block marked `<!-- readme-test -->` is a session of `$ command` lines and their output. Each command
must succeed and print output of the README's shape: the same lines, `...` standing for any number of lines, with
the measured numbers as placeholders (timings, rates, losses and accuracies differ between machines) and every
other number as written (image and parameter counts, epochs k/n, shapes, class labels, file names)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import docs_sessions  # noqa: E402

README = ROOT / "README.md"
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


# A measured number: one with decimals (0.2928, 91.36%, 0.7s), a duration in whole seconds (12s), a rate
# (1,810 img/s) or the best epoch (read off measured accuracies: on another CPU's kernels two epochs tie at 89.51%
# and the first is best). A percentage stays a percentage between 0% and 100% (100.00% and 0.00% included).
MEASURED = re.compile(r"\d[\d,]*\.\d+%?|\d[\d,]*(?=s\b)|\d[\d,]*(?= img/s)|(?<=best epoch )\d+")


def _placeholder(match: re.Match) -> str:
    number = match.group()
    if number.endswith("%"):
        return "#%" if 0 <= float(number[:-1].replace(",", "")) <= 100 else number
    return "#"


def shape(line: str) -> str:
    """Measured numbers become '#', runs of spaces one space: what stays is the line's shape, with its counts."""
    return " ".join(MEASURED.sub(_placeholder, line).split())


def test_the_shape_keeps_counts_and_masks_measurements() -> None:
    line = "epoch 3/5  train loss 1.0719  acc 64.30%  val loss 0.4980  acc 83.22%  0.7s  1,865 img/s"
    assert shape(line) == "epoch 3/5 train loss # acc #% val loss # acc #% #s # img/s"
    assert fits([line], ["epoch 3/5  train loss 0.9  acc 100.00%  val loss 0.5  acc 0.00%  12s  905 img/s"])
    assert not fits([line], ["epoch 3/6  train loss 1.0719  acc 64.30%  val loss 0.4980  acc 83.22%  0.7s  1,865 img/s"])
    assert not fits([line], ["epoch 3/5  train loss 1.0719  acc 164.30%  val loss 0.4980  acc 83.22%  0.7s  1 img/s"])
    counts = "data: digits from sklearn.datasets.load_digits (1,295 train, 143 val, 359 test)"
    assert fits([counts], [counts]) and not fits([counts], [counts.replace("143 val", "144 val")])
    assert not fits(["test: loss 0.2928  top-1 91.36%  (359 images, last checkpoint)"],
                    ["test: loss 0.2928  top-1 91.36%  (360 images, last checkpoint)"])
    assert fits(["  6  100.00%", "runs/samples/digits/000_5.png"], ["  6   97.22%", "runs/samples/digits/000_5.png"])
    assert not fits(["runs/samples/digits/000_5.png"], ["runs/samples/digits/000_7.png"])
    assert fits(["...", "done"], ["a", "b", "done"]) and not fits(["done"], [])
    assert fits(["training 3.5s at 1,810 img/s (wall 5.6s); best epoch 5"],
                ["training 2.5s at 2,555 img/s (wall 5.2s); best epoch 4"])
    assert not fits(["epoch 5/5  train loss 0.5"], ["epoch 4/5  train loss 0.5"])


def fits(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` has `expected`'s shape, as the docs' sessions are compared, with the README's stricter
    shape (counts kept)."""
    return docs_sessions.fits(expected, actual, shape)


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


def test_make_demo_ends_by_saying_how_to_type_cnnlab_and_that_line_works(tmp_path: Path) -> None:
    """`make demo` cannot put cnnlab on its caller's PATH: it prints how, and the README shows that line before
    the first session (issue 33: after `make demo`, `cnnlab ...` as the README typed it was `command not
    found`). The Makefile's own recipe runs, with this venv (its install step taken as done) and a short demo."""
    venv = Path(sys.prefix)
    done = subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "-o", f"{venv}/.stamp-base", "demo",
                           f"VENV={venv}", "DEMO=data=digits data.train_limit=64 epochs=1 batch_size=32"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    activate = next(line.strip() for line in lines if line.strip().startswith("source "))
    assert activate == f"source {venv}/bin/activate"
    # a shell whose PATH knows no cnnlab (as after a fresh clone): the printed line makes `cnnlab` a command
    bare = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cnnlab").exists())
    env = {**os.environ, "PATH": bare}
    env.pop("VIRTUAL_ENV", None)
    assert subprocess.run(["bash", "-c", "cnnlab --version"], env=env, capture_output=True).returncode == 127
    typed = subprocess.run(["bash", "-c", f"{activate} && cnnlab --version"], env=env, capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert typed.returncode == 0 and typed.stdout.strip().startswith("cnnlab"), typed.stderr
    # the README says it before its first `$ cnnlab` session, in the form the Makefile prints by default
    text = README.read_text()
    assert "source .venv/bin/activate" in text[:text.index("$ cnnlab")]
