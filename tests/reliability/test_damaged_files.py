"""Every file of a finished run and of a finished study, damaged, under every command that reads it (issue 34, 6).

Hypothesis picks a file kind (docs/explanation/guarantees.md lists them with their checks) and a damage (cut short,
emptied, filled with noise, one byte flipped, or replaced by the same file of another run: the seed-1 twin of the
run, or of the study's runs), and the test runs every reading command on a fresh copy: each ends with exit 0 and
the same output as on the intact copy, or with exit 2 and one message; never a traceback, never another number.
`make test` runs a few examples of each half (derandomized: the same ones every time); `make test-long` more."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cnnlab
from tests.helpers import FAST
from tests.reliability.helpers import cli_here

RUN_FILES = ("config.yaml", "run.json", "metrics.csv", "steps.csv", "predictions.safetensors", "eval_test.json",
             "checkpoints/last.safetensors", "checkpoints/previous.safetensors", "checkpoints/best.safetensors",
             "checkpoints/epoch_0001.safetensors")
STUDY_FILES = ("plan.json", "study.yaml", "baseline/run.json", "baseline/metrics.csv", "baseline/config.yaml",
               "relu/predictions.safetensors", "relu/checkpoints/last.safetensors")
DAMAGES = ("truncated", "empty", "noise", "flipped", "foreign")
TEXT = (".yaml", ".json", ".csv")  # a flipped byte in text can be a valid edit (a digit): those are 'foreign' here
EXAMPLES = int(os.environ.get("CNNLAB_DAMAGE_EXAMPLES", "6"))  # make test; make test-long runs LONG_EXAMPLES
LONG_EXAMPLES = 60
STUDY = f"""name: tiny
base: {{{", ".join(o.replace("=", ": ") for o in FAST)}}}
variations:
  relu: {{model.activation: relu}}
"""
TIMES = re.compile(r"(?<![\w/.-])\d[\d,.]*\s*(s|img/s|seconds)\b|wall \S+")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished run (with its evaluation and two kept epochs) and its seed-1 twin; a finished study and its
    seed-1 twin; and what every reading command says about the intact copies."""
    root = tmp_path_factory.mktemp("damaged")
    for name, seed in (("run", 0), ("twin", 1)):
        cnnlab.train(None, [*FAST, "train.keep_epochs=[1,2]", f"seed={seed}"], runs_dir=root, name=name, quiet=True)
        assert cli_here("eval", str(root / name), cwd=root).returncode == 0
    (root / "tiny.yaml").write_text(STUDY)
    for out, seed in (("study", 0), ("study_twin", 1)):
        done = cli_here("study", "run", "tiny.yaml", "--dir", out, "--quiet", "--seeds", str(seed), cwd=root)
        assert done.returncode == 0, done.output
    from PIL import Image

    Image.new("L", (8, 8), 128).save(root / "digit.png")
    return {"root": root}


def damaged_copy(source: Path, twin: Path, target: Path, name: str, damage: str, position: float) -> Path:
    copy = Path(shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock")))
    path = copy / name
    data = path.read_bytes()
    if damage == "flipped" and name.endswith(TEXT):
        damage = "foreign"
    if damage == "truncated":
        data = data[: int(len(data) * position)]
    elif damage == "empty":
        data = b""
    elif damage == "noise":
        data = os.urandom(max(16, int(len(data) * position)))
    elif damage == "flipped":
        flipped = bytearray(data)
        flipped[min(int(len(data) * position), len(data) - 1)] ^= 0x55
        data = bytes(flipped)
    else:
        data = (twin / name).read_bytes()
    path.write_bytes(data)
    return copy


def run_commands(run: Path, root: Path) -> dict[str, tuple[str, ...]]:
    return {"eval": ("eval", str(run)),
            "predict": ("predict", str(run), str(root / "digit.png")),
            "report": ("report", str(run)),
            "average": ("average", str(run), "--epochs", "1,2", "--name", f"{run.name}-avg"),
            "filters": ("viz", "filters", str(run)),
            "resume": ("train", "--resume", str(run), "--quiet")}


def study_commands(study: Path) -> dict[str, tuple[str, ...]]:
    return {"table": ("study", "table", str(study)), "plot": ("study", "plot", str(study)),
            "report": ("report", str(study)),
            "run": ("study", "run", str(study / "study.yaml"), "--dir", str(study), "--quiet")}


def said(text: str) -> str:
    """A command's output without what changes from one run of it to the next (times, paths of the copy)."""
    return TIMES.sub("", text)


def check(commands: dict[str, tuple[str, ...]], root: Path, intact: dict[str, str], what: str) -> None:
    for name, args in commands.items():
        result = cli_here(*args, cwd=root)
        assert "Traceback" not in result.output, (what, name, result.output)
        assert result.returncode in (0, 2), (what, name, result.returncode, result.output)
        if result.returncode == 2:
            assert result.stderr.count("error:") == 1, (what, name, result.stderr)
        elif name in intact:  # exit 0: exactly what the intact copy says
            assert said(result.stdout) == intact[name], (what, name, result.stdout, intact[name])


def intact_outputs(commands: dict[str, tuple[str, ...]], root: Path, source: Path, target: Path,
                   compared: tuple[str, ...]) -> dict[str, str]:
    copy = Path(shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock")))
    out = {}
    for name, args in commands.items():
        if name in compared:
            result = cli_here(*[str(a).replace(str(source), str(copy)) for a in args], cwd=root)
            assert result.returncode == 0, (name, result.output)
            out[name] = said(result.stdout.replace(str(copy), str(source)))
    return out


def damaged_run_case(finished: dict[str, Path], name: str, damage: str, position: float) -> None:
    root = finished["root"]
    work = Path(tempfile.mkdtemp(prefix="case-", dir=root))
    run = damaged_copy(root / "run", root / "twin", work / "run", name, damage, position)
    compared = ("eval", "predict")
    intact = intact_outputs(run_commands(root / "run", root), root, root / "run", work / "intact", compared)
    intact = {key: value.replace(str(root / "run"), str(run)) for key, value in intact.items()}
    check(run_commands(run, root), root, intact, f"{name} {damage}")


def damaged_study_case(finished: dict[str, Path], name: str, damage: str, position: float) -> None:
    root = finished["root"]
    work = Path(tempfile.mkdtemp(prefix="case-", dir=root))
    study = damaged_copy(root / "study", root / "study_twin", work / "study", name, damage, position)
    check(study_commands(study), root, {}, f"{name} {damage}")


def examples(count: int) -> settings:
    return settings(max_examples=count, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


RUN_CASES = {"name": st.sampled_from(RUN_FILES), "damage": st.sampled_from(DAMAGES), "position": st.floats(0.05, 0.95)}
STUDY_CASES = {**RUN_CASES, "name": st.sampled_from(STUDY_FILES)}


@examples(EXAMPLES)
@given(**RUN_CASES)
def test_a_damaged_file_of_a_finished_run_is_refused_or_changes_nothing(finished: dict[str, Path], name: str,
                                                                        damage: str, position: float) -> None:
    damaged_run_case(finished, name, damage, position)


@examples(EXAMPLES)
@given(**STUDY_CASES)
def test_a_damaged_file_of_a_finished_study_is_refused_or_changes_nothing(finished: dict[str, Path], name: str,
                                                                          damage: str, position: float) -> None:
    damaged_study_case(finished, name, damage, position)


@examples(LONG_EXAMPLES)
@given(**RUN_CASES)
def test_many_damaged_files_of_a_finished_run(finished: dict[str, Path], name: str, damage: str,
                                              position: float) -> None:
    damaged_run_case(finished, name, damage, position)


@examples(LONG_EXAMPLES)
@given(**STUDY_CASES)
def test_many_damaged_files_of_a_finished_study(finished: dict[str, Path], name: str, damage: str,
                                                position: float) -> None:
    damaged_study_case(finished, name, damage, position)


def test_the_guarantees_page_lists_every_file_kind_damaged_here() -> None:
    """docs/explanation/guarantees.md's table names each file kind this test damages, with its check."""
    page = (Path(__file__).parents[2] / "docs" / "explanation" / "guarantees.md").read_text()
    table = page.split("## Every file, and how it is checked")[1]
    for name in {*RUN_FILES, *(f.split("/", 1)[-1] for f in STUDY_FILES)}:
        base = name.split("/")[-1]
        shown = "checkpoints/*.safetensors" if name.startswith("checkpoints/") else base
        owner = "STUDY" if base in ("plan.json", "study.yaml") else "RUN"
        assert f"`{owner}/{shown}" in table or f"`{owner}/{shown}`" in table, name
