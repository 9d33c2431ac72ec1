"""The Python API runs the same code as the CLI and returns results with metrics and the run path."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from tests.helpers import FAST


def test_train_evaluate_load_predict(tmp_path: Path) -> None:
    result = cnnlab.train(None, FAST, runs_dir=tmp_path, name="api", quiet=True)
    assert result.status == "completed" and result.exit_code == 0
    assert result.run_dir == tmp_path / "api" and 0.0 <= result.accuracy <= 1.0
    for name in ("config.yaml", "run.json", "metrics.csv", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors", "plots/curves.png"):
        assert (result.run_dir / name).is_file(), name

    run = cnnlab.load_run(result.run_dir)
    assert run.status == "completed" and run.config.model.name == "lenet5" and len(run.metrics()) == 2
    assert run.spec.image_size == 32 and run.spec.channels == 1 and run.info["test"] == result.test

    report = cnnlab.evaluate(result.run_dir)
    assert report["acc"] == result.test["acc"]  # 'auto' uses the weights the run's test score used
    assert sum(map(sum, report["confusion"])) == report["count"] == 359
    assert set(report["per_class"]) == set(run.spec.classes)
    from scipy.stats import binomtest  # the eval's intervals are the Wilson intervals of its own counts

    wilson = binomtest(round(report["acc"] * 359), 359).proportion_ci(method="wilson")
    assert report["acc_interval"] == pytest.approx((wilson.low, wilson.high))
    assert report["acc_interval"][0] < report["acc"] < report["acc_interval"][1]
    assert report["top5_interval"][0] <= report["top5"] <= report["top5_interval"][1]

    digit = (np.eye(8, dtype=np.uint8) * 255)
    Image.fromarray(digit).save(tmp_path / "d.png")
    [prediction] = cnnlab.predict(result.run_dir, [tmp_path / "d.png"])
    probs = [p for _, p in prediction["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6


def test_keyword_overrides_and_runconfig(tmp_path: Path) -> None:
    config = cnnlab.make_config(None, FAST, **{"model.activation": "relu"})
    assert config.model.options["activation"] == "relu"
    result = cnnlab.train(config, runs_dir=tmp_path, quiet=True, epochs=1)
    assert len(result.history) == 1 and result.run_dir.parent == tmp_path


def test_predict_reads_any_pil_mode_and_refuses_broken_files(tmp_path: Path) -> None:
    import pytest

    from cnnlab.errors import DataError

    result = cnnlab.train(None, FAST, runs_dir=tmp_path, name="p", quiet=True)
    paths = []
    for mode in ("RGBA", "P", "CMYK", "I;16", "1"):
        path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (12, 9)).save(path)
        paths.append(path)
    predictions = cnnlab.predict(result.run_dir, paths, k=2)
    assert [len(p["top"]) for p in predictions] == [2] * len(paths)
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:30])
    with pytest.raises(DataError, match="cannot decode image '.*broken.png'"):
        cnnlab.predict(result.run_dir, [broken])
    with pytest.raises(DataError, match="does not exist"):
        cnnlab.predict(result.run_dir, [tmp_path / "nope.png"])


def test_prediction_input_matches_the_training_input(tmp_path: Path) -> None:
    """A native-size image goes through the same fit as the training images (28 -> 32 by zero padding)."""
    import torch

    from cnnlab.data import DataSpec
    from cnnlab.data.prepare import fit_size
    from cnnlab.evaluate.images import read_image

    spec = DataSpec("x", ("a", "b"), 1, 32, (0.5,), (1.0,), {}, "test", native_size=28, resize="auto")
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "native.png")
    expected = fit_size(torch.from_numpy(pixels).view(1, 1, 28, 28), 32, "auto")[0]
    assert torch.equal(read_image(tmp_path / "native.png", spec), expected)
    Image.fromarray(pixels).resize((56, 70)).save(tmp_path / "large.png")
    assert read_image(tmp_path / "large.png", spec).shape == (1, 32, 32)


def test_history_is_a_table_of_the_epochs_as_metrics_csv_has_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import sys

    from cnnlab.errors import ConfigError

    result = cnnlab.train(None, FAST, runs_dir=tmp_path, name="h", quiet=True)
    history = result.history
    assert isinstance(history, cnnlab.History) and len(history) == 2 and history[-1]["epoch"] == 2  # still a list
    with open(result.run_dir / "metrics.csv") as handle:
        written = list(csv.DictReader(handle))
    assert history.columns[:4] == ["epoch", "step", "lr", "train_loss"] and set(history.columns) <= set(written[0])
    assert history.column("val_acc") == pytest.approx([float(row["val_acc"]) for row in written])
    with pytest.raises(ConfigError, match="no column 'val_accuracy'; its columns: epoch, step"):
        history.column("val_accuracy")
    frame = history.to_pandas()
    assert list(frame.index) == [1, 2] and frame["train_loss"].tolist() == pytest.approx(history.column("train_loss"))
    page = history._repr_html_()
    assert page.startswith('<table class="cnnlab-table"><caption>history: 2 epochs</caption>')
    assert f"<td>{100 * history[0]['val_acc']:.2f}%</td>" in page and "<th>val_acc</th>" in page
    monkeypatch.setitem(sys.modules, "pandas", None)  # a Python without pandas: said, with the fix
    with pytest.raises(ConfigError, match="needs pandas, which is not installed: `pip install pandas`"):
        history.to_pandas()


@pytest.mark.slow
def test_the_workflow_is_at_the_top_level_study_tune_check_lr_find(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """cnnlab.study (a packaged study by name), cnnlab.tune (a grid), cnnlab.check and cnnlab.lr_find, as
    `import cnnlab` offers them, without reaching into internal modules."""
    monkeypatch.chdir(tmp_path)
    small = ["data.name=digits", "data.train_limit=128", "epochs=1", "batch_size=32"]
    table = cnnlab.study("bf16_cpu", small, seeds=[0], quiet=True)
    assert table.csv == Path("runs/bf16_cpu/table.csv") and table.csv.is_file()
    assert [row[0] for row in table.rows] == ["fp32", "bf16"] and "verdict" in table.headers
    assert "<table" in table._repr_html_()
    grid = cnnlab.tune(grid={"optim.lr": [0.05, 0.01]}, overrides=[*FAST, "epochs=1"], directory="runs/grid")
    assert len(grid.rows) == 2 and grid.final is not None and grid.best["grid"]["optim.lr"] in (0.05, 0.01)
    report = cnnlab.check(None, FAST)
    assert {c.name for c in report.checks} >= {"labels", "initial_loss"} and not report.failed
    found = cnnlab.lr_find(None, FAST, steps=30, runs_dir="runs")
    assert found.lr == found.suggestion.candidates[found.suggestion.rule] and found.png.is_file()
    with pytest.raises(cnnlab.ConfigError, match="a search-space file .* or a grid"):
        cnnlab.tune()
    assert {"study", "tune", "check", "lr_find", "History"} <= set(dir(cnnlab))
