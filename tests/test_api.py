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
