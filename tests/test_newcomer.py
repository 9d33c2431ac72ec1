"""A newcomer's first hour (issue 17): a named data root is the only place searched, data-dependent study
mistakes stop the study before its first run, examples chain, the documented imports work, messages point
at the fix, and outputs land under runs/."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.cli import build_parser, main
from tests.helpers import FAST, write_mnist_like


def test_a_named_data_root_is_the_only_place_searched(tmp_path: Path, monkeypatch, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_mnist_like(elsewhere / "mnist", train=60, test=20)
    monkeypatch.setenv("CNNLAB_DATA", str(elsewhere))  # a copy the search order would find
    monkeypatch.chdir(tmp_path)
    for option in (["--data-root", "nope"], ["data.root=nope"]):
        assert main(["train", "data=mnist", "epochs=1", *option]) == 2
        err = capsys.readouterr().err
        assert "dataset 'mnist' is not in the data root you named, nope" in err
        assert "nope/mnist" in err and str(elsewhere) not in err and "A named root is the only place searched" in err
    assert not Path("runs").exists()  # nothing created
    assert main(["train", "data=mnist", "epochs=1", "batch_size=20", "--name", "found"]) == 0
    assert f"data: mnist from {elsewhere / 'mnist'} (" in capsys.readouterr().out  # where it came from, said
    assert main(["train", "data=mnist", "epochs=1", "batch_size=20", "--name", "direct", "--data-root",
                 str(elsewhere / "mnist")]) == 0  # a named folder that holds the files itself
    assert f"data: mnist from {elsewhere / 'mnist'} (" in capsys.readouterr().out


STUDY = """\
name: sizes
base: {model: lenet5, data: {name: digits, train_limit: 200}, epochs: 1, batch_size: 32}
variations:
  baseline: {}
  big: {batch_size: 4096}
"""


def test_a_study_stops_on_a_data_mistake_before_its_first_run(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("sizes.yaml").write_text(STUDY)
    assert main(["study", "run", "sizes.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sizes.yaml:5: variation 'big' (run big): train.batch_size=4096 is larger than the training set (200" in err
    assert not Path("runs/sizes/baseline").exists()  # the baseline did not run first
    Path("classes.yaml").write_text(STUDY.replace("big: {batch_size: 4096}", "odd: {data.classes: [0, 42]}"))
    assert main(["study", "run", "classes.yaml", "--quiet"]) == 2
    assert "classes.yaml:5: variation 'odd'" in capsys.readouterr().err


def test_examples_chain_export_samples_then_predict(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--name", "digits", "--quiet"]) == 0
    assert main(["data", "export-samples", "digits", "-n", "3"]) == 0
    files = capsys.readouterr().out.split()[-3:]
    assert [Path(f).parent for f in files] == [Path("runs/samples/digits")] * 3
    assert all(Path(f).stat().st_mode & 0o044 for f in files)  # readable by others, like any file the user makes
    assert main(["predict", "runs/digits", *files]) == 0
    out = capsys.readouterr().out
    assert all(Path(f).name in out for f in files)
    # an exported image is exactly the network's view of that test image: predict agrees with the model
    run = cnnlab.load_run("runs/digits")
    images, _ = next(iter(run.batches("test", device="cpu", batch_size=3)[0]))
    with torch.inference_mode():
        probs = torch.softmax(run.model()(images), dim=1)
    predicted = cnnlab.predict("runs/digits", files, k=1)
    assert [p["top"][0][0] for p in predicted] == [run.spec.classes[int(i)] for i in probs.argmax(1)]
    assert [p["top"][0][1] for p in predicted] == pytest.approx(probs.max(1).values.tolist(), abs=1e-5)
    # predict builds the run's network in the run's layout (channels_last on a CPU), as evaluation does
    from cnnlab.train import Runtime

    def last_conv(model: torch.nn.Module) -> torch.Tensor:
        return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].weight
    nhwc = last_conv(run.model(runtime=Runtime(torch.device("cpu"), None, True)))
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nhwc.is_contiguous()
    assert last_conv(run.model()).is_contiguous() and torch.equal(nhwc, last_conv(run.model()))
    Path("runs/samples/mine").mkdir(parents=True)
    Path("runs/samples/mine/notes.txt").write_text("mine")
    assert main(["data", "export-samples", "digits", "--out", "runs/samples/mine"]) == 2  # never into others' files
    assert "is a folder of other files" in capsys.readouterr().err


def test_the_documented_imports(tmp_path: Path) -> None:
    """README, "Python API": a `cnnlab.Callback` passed to `cnnlab.train` gets its five hooks in order and stops
    the run with `trainer.request_stop(reason)` (the old `should_stop` says so); `cnnlab.RunRecord` reads the run's run.json, `cnnlab.Status` names
    its status."""
    from cnnlab import Callback, RunRecord, Status, TrainResult

    class StopAfterOneEpoch(Callback):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def on_fit_start(self, trainer) -> None:
            self.calls.append("fit start")
            trainer.progress_seconds = 0.0  # a progress report after every step

        def on_epoch_start(self, trainer, epoch: int) -> None:
            self.calls.append(f"epoch start {epoch}")

        def on_progress(self, trainer, progress: dict) -> None:
            self.calls.append(f"progress {progress['step']}")

        def on_epoch_end(self, trainer, row: dict) -> None:
            self.calls.append(f"epoch end {row['epoch']}")
            with pytest.raises(AttributeError, match=r"request_stop\(reason\)"):
                trainer.should_stop = True  # the API before FitResult: refused, not silently ignored
            trainer.request_stop("one epoch is enough")

        def on_fit_end(self, trainer, result) -> None:
            self.calls.append(f"fit end {result.status}")

    assert {"Callback", "RunRecord", "Status", "TrainResult"} <= set(cnnlab.__all__)
    callback = StopAfterOneEpoch()
    result = cnnlab.train(None, [*FAST, "epochs=3"], runs_dir=tmp_path, name="api", quiet=True, callbacks=[callback])
    assert callback.calls == ["fit start", "epoch start 0", *(f"progress {step}" for step in range(1, 9)),
                              "epoch end 1", "fit end stopped_early"]  # 256 images in batches of 32: 8 steps
    assert isinstance(result, TrainResult) and result.status == Status.STOPPED_EARLY
    record = RunRecord.load(result.run_dir / "run.json")
    assert isinstance(record, RunRecord) and record.status == Status.STOPPED_EARLY == "stopped_early"
    assert record.epochs_completed == 1 and record.reason == "one epoch is enough"


@pytest.mark.parametrize("argv,message", [
    (["train", "--epochs", "3"], "--epochs: no such option; config options are key=value: epochs=3"),
    (["train", "--lr=0.1", "data=digits"], "config options are key=value: lr=0.1"),
    (["summary", "convnet", "model.batch_nrm=true"], "did you mean 'model.batch_norm'?"),
    (["config", "model.filters=a,b"], "model.filters (override 'model.filters=a,b') must be list of int"),
])
def test_messages_point_at_the_fix(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "model.model." not in err


def test_more_messages(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["summary", "convnet", "model.batch_norm=true"]) == 0  # the very key typed works
    assert main(["summary", "convnet", "filters=64,128,256"]) == 0  # a comma list is a list
    assert "256" in capsys.readouterr().out
    Path("study.yaml").write_text(STUDY)
    assert main(["lr-plot", "study.yaml"]) == 2
    assert "'study.yaml' is a study file (it has variations:), not a run config: run it with `cnnlab study run" in \
        capsys.readouterr().err
    assert main(["train", *FAST, "epochs=1", "--name", "demo", "--quiet"]) == 0
    assert main(["train", *FAST, "epochs=1", "--resume", "demo"]) == 2
    assert "did you mean --resume runs/demo?" in capsys.readouterr().err
    assert main(["train", *FAST, "epochs=2", "--resume", "runs/demo"]) == 2
    err = capsys.readouterr().err
    assert "or allow them with --allow-config-change." in err and "allow_config_change=True" not in err
    with pytest.raises(cnnlab.ConfigError, match=r"allow_config_change=True\.$"):  # the API speaks Python
        cnnlab.train(None, [*FAST, "epochs=2"], resume="runs/demo")


def test_every_option_of_every_command_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if name != "worker":  # hidden: a study's own subprocess
                        walk(child, f"{path} {name}")
            elif not action.help and action.option_strings and action.dest != "help":
                missing.append(f"{path} {action.option_strings[-1]}")
            elif action.help is None and not action.option_strings:
                missing.append(f"{path} {action.dest}")

    walk(build_parser(), "cnnlab")
    assert not missing, missing


def test_outputs_land_under_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lr-plot", "schedule=cosine", "epochs=5"]) == 0
    assert main(["data", "show", "digits", "-n", "4"]) == 0
    assert main(["optim-paths", "--surface", "saddle", "--steps", "5", "--optimizers", "sgd"]) == 0
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made and all(p.startswith("runs/") for p in made), made
    assert {"runs/lr_schedule.png", "runs/digits_train.png", "runs/optim_paths/saddle.png"} <= set(made)


def test_tables_have_no_trailing_spaces_and_top5_is_hidden_for_few_classes(tmp_path: Path, capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 20 and not [line for line in lines if line != line.rstrip()]
    assert main(["train", *FAST, "data.classes=[0,1,2]", "epochs=1", "--runs-dir", str(tmp_path), "--name", "three"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "top-5" not in out
    assert main(["eval", str(tmp_path / "three")]) == 0
    assert "top-5" not in capsys.readouterr().out


def test_out_never_replaces_a_run_directorys_own_files(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "epochs=1", "--name", "r", "--quiet"]) == 0
    record = Path("runs/r/run.json").read_bytes()
    for argv in (["bench", "lenet5", "--steps", "1", "--repeats", "1", "--out", "runs/r/run.json"],
                 ["bench", "lenet5", "--steps", "1", "--repeats", "1", "--out", "runs/r/eval_test.json"],
                 ["ensemble", "runs/r", "runs/r", "--out", "runs/r/run.json"]):
        assert main(argv) == 2
        assert "is inside the run directory 'runs/r'" in capsys.readouterr().err
    assert Path("runs/r/run.json").read_bytes() == record
    assert main(["ensemble", "runs/r", "runs/r", "--flip", "--tta", "10crop"]) == 2
    assert "--flip and --tta 10crop ask for two different test-time views" in capsys.readouterr().err


def test_a_reader_that_leaves_does_not_fail_the_run(tmp_path: Path) -> None:
    """`cnnlab train ... | head -1`: the run completes (the pipe's reader left after one line)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", f"cnnlab train {' '.join(FAST)} epochs=3 --name piped | head -1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("data: digits") and "Traceback" not in done.stderr
    record = cnnlab.load_run(tmp_path / "runs" / "piped").record
    assert record.status == "completed" and record.epochs_completed == 3
