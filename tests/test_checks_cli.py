"""`cnnlab check`, `cnnlab lr-find` and `optim.lr=find` as a user runs them: real processes on the bundled
digits and on an image tree the test writes, with a duplicate across train/test and one under two labels."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab.api import lr_find, make_config
from cnnlab.api.lr_find import lr_found_config
from cnnlab.errors import ConfigError
from cnnlab.train.lr_find import DEFAULT_RULE, RULES
from cnnlab.viz.report import parse_report, write_report


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def leaky_tree(root: Path) -> Path:
    """train/{a,b}/ 6 images each, test/{a,b}/ 3 each, all different, then: test/a/copy.bmp is train/a/0.png
    re-encoded (1 test image in train), and train/b/dup.png is train/a/1.png (1 copy within train, 1 image
    under two labels)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 3)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    Image.open(root / "train" / "a" / "0.png").save(root / "test" / "a" / "copy.bmp")
    Image.open(root / "train" / "a" / "1.png").save(root / "train" / "b" / "dup.png", compress_level=9)
    return root


@pytest.mark.slow
def test_check_counts_the_leaks_of_an_image_tree_and_drop_test_leaks_removes_them(tmp_path: Path) -> None:
    root = leaky_tree(tmp_path / "tree")
    base = ["data=imagefolder", f"data.root={root}", "data.val_fraction=0", "model=lenet5", "device=cpu",
            "batch_size=4"]
    result = run_cli("check", *base)
    assert result.returncode == 0, result.stderr  # warnings only
    row = next(line for line in result.stdout.splitlines() if line.startswith("leakage"))
    assert "warning" in row and "1 test in train, 1 within train, 1 label conflicts" in row, result.stdout
    assert f"test {root}/test/a/copy.bmp = train {root}/train/a/0.png" in result.stdout
    assert f"{root}/train/a/1.png = {root}/train/b/dup.png" in result.stdout
    assert re.search(r"train \S+/train/a/1\.png \(label 0\), train \S+/train/b/dup\.png \(label 1\)", result.stdout)
    assert "data.drop_test_leaks=true" in row
    assert "test 3-4 per class" in next(line for line in result.stdout.splitlines() if line.startswith("balance"))

    strict = run_cli("check", *base, "data.drop_test_leaks=true", "--strict")
    assert strict.returncode == 1, strict.stdout + strict.stderr  # the copies inside train are still there
    row = next(line for line in strict.stdout.splitlines() if line.startswith("leakage"))
    assert "1 within train, 1 label conflicts" in row and "test in train" not in row
    balance = next(line for line in strict.stdout.splitlines() if line.startswith("balance"))
    assert "test 3-3 per class" in balance  # class a lost its copy: 4 -> 3 test images


@pytest.mark.slow
def test_check_overfit_passes_on_digits_and_fails_with_an_lr_that_cannot_learn(tmp_path: Path) -> None:
    sound = run_cli("check", "data=digits", "model=lenet5", "device=cpu", "--overfit", "--no-leakage", cwd=tmp_path)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert re.search(r"overfit\s+ok\s+one batch of 64 learnt to 100\.0% in \d+ steps", sound.stdout), sound.stdout
    stuck = run_cli("check", "data=digits", "model=lenet5", "device=cpu", "lr=1e-7", "--overfit", "--steps", "40",
                    "--no-leakage", cwd=tmp_path)
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    assert re.search(r"overfit\s+failed\s+one batch of 64 reached only [\d.]+% training accuracy in 40 steps "
                     r"\(lr 1e-07", stuck.stdout), stuck.stdout
    assert "1 failed, 0 warnings, 4 ok" in stuck.stdout
    assert not list(tmp_path.iterdir())  # nothing written: no run, no weights


@pytest.mark.slow
def test_lr_find_writes_its_plot_and_csv_and_suggests_within_the_range(tmp_path: Path) -> None:
    result = run_cli("lr-find", "data=digits", "model=lenet5", "device=cpu", "--steps", "60", "--name", "probe",
                     "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "runs" / "lr-find" / "probe"
    assert (folder / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(folder / "lr_find.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert 10 <= len(rows) <= 60 and float(rows[0]["lr"]) == pytest.approx(1e-7)
    rates = [float(r["lr"]) for r in rows]
    assert all(b > a for a, b in zip(rates, rates[1:]))  # the exponential ramp: each rate x (1e8)^(1/59)
    assert rates[1] / rates[0] == pytest.approx(1e8 ** (1 / 59), rel=1e-3)
    suggested = float(re.search(r"suggested lr (\S+): " + re.escape(RULES[DEFAULT_RULE]), result.stdout).group(1))
    minimum = float(re.search(r"minimum of the smoothed loss \S+ at lr (\S+)", result.stdout).group(1))
    assert 1e-7 <= suggested <= 10
    smoothed = [float(r["smoothed_loss"]) for r in rows]
    assert minimum == pytest.approx(rates[int(np.argmin(smoothed))], rel=0.01)  # the printed minimum is the CSV's
    alternatives = dict(re.findall(r"^  (\S+): lr (\S+), ", result.stdout, flags=re.M))
    assert set(alternatives) == set(RULES) - {DEFAULT_RULE}  # the other readings, printed beside it
    if "minimum/10" in alternatives:
        assert float(alternatives["minimum/10"]) == pytest.approx(minimum / 10, rel=0.01)


def test_a_range_test_that_diverges_at_once_suggests_nothing_and_says_why(tmp_path: Path) -> None:
    result = run_cli("lr-find", "data=digits", "model=lenet5", "device=cpu", "data.train_limit=256", "optimizer=sgd",
                     "--start", "1e3", "--end", "1e6", "--steps", "30", "--name", "hot", "--runs-dir",
                     str(tmp_path / "runs"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "suggested lr" not in result.stdout and "Traceback" not in result.stderr
    assert re.search(r"^no suggestion: the (loss diverged at lr \S+ before it fell|range test diverged at once)",
                     result.stdout, flags=re.M), result.stdout
    assert "lower --start" in result.stdout
    assert (tmp_path / "runs" / "lr-find" / "hot" / "lr_find.csv").is_file()  # the curve, to look at
    # optim.lr=find on such a test: the run stops before it starts, saying why (exit 2 at the command line)
    found = lr_find(None, ["data=digits", "model=lenet5", "device=cpu", "data.train_limit=256", "optimizer=sgd"],
                    start=1e3, end=1e6, steps=30, name="hot2", runs_dir=tmp_path / "runs")
    assert found.lr is None
    with pytest.raises(ConfigError, match="optim.lr=find: no suggestion: .*lower --start"):
        lr_found_config(make_config(None, ["data=digits"]), found)


@pytest.mark.slow
def test_train_with_lr_find_records_the_number_and_checks_in_run_json(tmp_path: Path) -> None:
    result = run_cli("train", "data=digits", "model=lenet5", "device=cpu", "epochs=1", "lr=find",
                     "--name", "found", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    assert "check:" not in result.stdout + result.stderr  # digits and lenet5 pass every check: no warning line
    run = tmp_path / "runs" / "found"
    record = json.loads((run / "run.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    found = record["lr_find"]["lr"]
    assert config["optim"]["lr"] == found and found != 0.02  # the number, not 'find' nor the default
    assert f"lr-find: optim.lr={found:g}" in result.stdout
    assert (tmp_path / "runs" / "lr-find" / "found" / "lr_find.png").is_file()
    assert record["lr_find"]["rule"] == DEFAULT_RULE and record["lr_find"]["how"] == RULES[DEFAULT_RULE]
    assert set(record["lr_find"]["candidates"]) == set(RULES) and record["lr_find"]["candidates"][DEFAULT_RULE] == found
    assert result.stdout.count("data: digits from") == 1  # said once, by the run (the range test is quiet about it)
    assert set(record["checks"]) == {"labels", "initial_loss", "balance", "inputs", "leakage"}
    assert {c["status"] for c in record["checks"].values()} == {"ok"}
    assert record["checks"]["initial_loss"]["ratio"] == pytest.approx(1.0, abs=0.1)
    tables = parse_report(write_report(run))["tables"]
    checks = next(t for t in tables if t[0] == ["check", "status", "finding"])
    assert [r[0] for r in checks[1:]] == ["labels", "initial loss", "balance", "inputs", "leakage", "lr find"]
    assert checks[-1][2].startswith(f"optim.lr={found:g}")


@pytest.mark.slow
def test_train_start_says_each_warning_in_one_line_and_records_it(tmp_path: Path) -> None:
    root = leaky_tree(tmp_path / "tree")  # decoded once into memory (cache=device): leakage is checked at the start
    result = run_cli("train", "data=imagefolder", f"data.root={root}", "data.val_fraction=0", "data.cache=device",
                     "model=lenet5", "device=cpu", "epochs=1", "batch_size=4", "--name", "leaky",
                     "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("check:")]
    assert len(warnings) == 1 and warnings[0].startswith("check: leakage: pixel-identical images: 1 test in train, "
                                                         "1 within train, 1 label conflicts"), result.stderr
    record = json.loads((tmp_path / "runs" / "leaky" / "run.json").read_text())
    leakage = record["checks"]["leakage"]
    assert leakage["status"] == "warning" and leakage["counts"]["test in train"] == 1
    assert leakage["counts"]["within train"] == 1 and leakage["counts"]["label conflicts"] == 1
