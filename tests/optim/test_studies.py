"""The optimizer studies: comparison runs with their plot and table, trajectories on 2-D surfaces, lr plots."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.api import compare_optimizers
from cnnlab.cli import main
from cnnlab.experiments.trajectories import SURFACES, optimizer_paths
from cnnlab.optim import OPTIMIZERS

TINY = ["data=digits", "model=lenet5", "data.train_limit=256", "batch_size=32", "epochs=2"]


def test_compare_optimizers_runs_plots_and_tables(tmp_path: Path) -> None:
    result = compare_optimizers(["sgd", "adam:0.003"], TINY, tmp_path / "cmp", quiet=True)
    assert [r["optimizer"] for r in result.rows] == ["sgd", "adam-lr0.003"]
    assert result.rows[1]["lr"] == 0.003 and all(r["status"] == "completed" for r in result.rows)
    assert result.plot.stat().st_size > 10_000 and result.table.read_text().startswith("optimizer,lr,status")
    assert result.rows[0]["verdict"] == "reference" and result.rows[0]["delta"] == "+0.00"
    from cnnlab.evaluate.stats import mcnemar
    from cnnlab.runs.predictions import read_predictions

    ours, theirs = (read_predictions(tmp_path / "cmp" / name)["test"] for name in ("adam-lr0.003", "sgd"))
    expected = mcnemar(ours.correct, theirs.correct)  # adam against sgd, the first optimizer, image by image
    assert result.rows[1]["delta"] == f"{100 * expected.delta:+.2f} [{100 * expected.low:+.2f}, {100 * expected.high:+.2f}]"
    assert result.rows[1]["verdict"] == "1 seed"  # one run an optimizer: McNemar's interval, no word
    assert result.rows[1]["p_holm"] == pytest.approx(expected.p_value)
    steps = (tmp_path / "cmp" / "sgd" / "steps.csv").read_text().splitlines()
    assert steps[0] == "epoch,step,loss" and len(steps) == 1 + 2 * 8  # 256 / 32 = 8 steps per epoch
    stamp = (tmp_path / "cmp" / "sgd" / "run.json").stat().st_mtime_ns
    compare_optimizers(["sgd", "adam:0.003"], TINY, tmp_path / "cmp", quiet=True)
    assert (tmp_path / "cmp" / "sgd" / "run.json").stat().st_mtime_ns == stamp  # finished runs are kept


def test_compare_optimizers_cli(tmp_path: Path, capsys) -> None:
    assert main(["compare-optimizers", *TINY, "--optimizers", "momentum", "--dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "momentum" in out and "loss_per_iteration.png" in out
    assert main(["compare-optimizers", "--optimizers", "adamm", "--dir", str(tmp_path)]) == 2
    assert "did you mean 'adam'" in capsys.readouterr().err


@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_optimizer_moves_downhill_on_every_surface(surface: str) -> None:
    paths = optimizer_paths(surface, OPTIMIZERS.names())
    function = SURFACES[surface].function
    import torch

    for name, path in paths.items():
        start = float(function(torch.tensor(path[0, 0]), torch.tensor(path[0, 1])))
        end = float(function(torch.tensor(path[-1, 0]), torch.tensor(path[-1, 1])))
        assert np.isfinite(path).all() and end < start, (surface, name, start, end)
        assert path.shape == (SURFACES[surface].steps + 1, 2) and tuple(path[0]) == SURFACES[surface].start
    # the first step, by hand, at each rule's rate for this surface: plain gradient descent moves by -lr x gradient
    # (no weight decay on a 2-D point); Adam's first step is lr x sign(gradient) (m_hat / sqrt(v_hat) = g / |g|)
    x, y = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in SURFACES[surface].start)
    function(x, y).backward()
    gradient = np.array([float(x.grad), float(y.grad)])
    rates = SURFACES[surface].rates
    assert paths["sgd"][1] == pytest.approx(paths["sgd"][0] - rates["sgd"] * gradient, abs=1e-12)
    assert paths["adam"][1] == pytest.approx(paths["adam"][0] - rates["adam"] * np.sign(gradient), abs=1e-6)


def test_a_path_that_blows_up_stays_at_its_last_finite_point() -> None:
    path = optimizer_paths("rosenbrock", ["sgd"], rates={"sgd": 0.1}, steps=30)["sgd"]  # far too large a step
    assert np.isfinite(path).all() and path.shape == (31, 2)
    last = max(i for i in range(31) if i == 0 or not np.array_equal(path[i], path[i - 1]))
    assert last < 30 and (path[last:] == path[last]).all() and np.abs(path).max() <= 1e6


def test_gradient_descent_zig_zags_on_the_elongated_quadratic_and_momentum_helps() -> None:
    paths = optimizer_paths("quadratic", ["sgd", "nesterov"], rates={"sgd": 0.9, "nesterov": 0.15}, steps=40)
    y_sign_changes = lambda p: int(np.sum(np.diff(np.sign(p[:, 1])) != 0))  # noqa: E731
    assert y_sign_changes(paths["sgd"]) > 10 > y_sign_changes(paths["nesterov"])


def test_optim_paths_writes_png_and_animated_gif(tmp_path: Path, capsys) -> None:
    assert main(["optim-paths", "--surface", "saddle", "--optimizers", "sgd,adam", "--out", str(tmp_path)]) == 0
    with Image.open(tmp_path / "saddle.gif") as gif:
        assert gif.is_animated and gif.n_frames > 20
    assert (tmp_path / "saddle.png").stat().st_size > 10_000
    assert main(["optim-paths", "--surface", "moon"]) == 2


def test_lr_plot(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lr.png"
    args = ["lr-plot", "optimizer=lars", "schedule=polynomial", "schedule.warmup_epochs=2", "epochs=20", "--out", str(out)]
    assert main(args) == 0
    assert "lr from 0 (max 0.1) to 0 over 20 epochs" in capsys.readouterr().out and out.stat().st_size > 10_000
