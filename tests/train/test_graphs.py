"""The CUDA-graph step's pieces that run anywhere: its SGD update equals torch.optim.SGD's, the reasons it
falls back, and that a CPU run asking for graphs trains eagerly, exactly as without, and says so. (The
capture itself is tested on a GPU: tests/test_gpu.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.data import DeviceBatches, ImageSet
from cnnlab.train.graphs import graph_support, sgd_update
from tests.helpers import FAST


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [(0.0, False, 0.0), (0.9, False, 5e-4),
                                                            (0.9, True, 1e-3)])
def test_the_captured_update_is_torch_sgd(momentum: float, nesterov: bool, weight_decay: float) -> None:
    torch.manual_seed(0)
    ours = [torch.randn(5, 3), torch.randn(7)]
    theirs = [p.clone().requires_grad_() for p in ours]
    reference = torch.optim.SGD(theirs, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    buffers = [torch.zeros_like(p) for p in ours] if momentum else None
    for step in range(5):
        grads = [torch.randn_like(p) for p in ours]
        lr = 0.1 / (step + 1)  # a schedule: the tensor changes between steps
        for group in reference.param_groups:
            group["lr"] = lr
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        reference.step()
        sgd_update(ours, grads, buffers, torch.tensor(lr), momentum, weight_decay, nesterov)
        for a, b in zip(ours, theirs):
            assert torch.allclose(a, b.detach(), atol=1e-6), step


def test_the_reasons_to_train_eagerly() -> None:
    images = ImageSet(torch.zeros(8, 1, 4, 4, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64))
    batches = DeviceBatches(images, (0.5,), (0.5,), 4, drop_last=True)
    model = torch.nn.Linear(2, 2)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cuda = torch.device("cuda")
    assert graph_support(cuda, batches, sgd, False, False) is None
    assert "needs a CUDA device" in graph_support(torch.device("cpu"), batches, sgd, False, False)
    assert "fixed-shape batches" in graph_support(cuda, DeviceBatches(images, (0.5,), (0.5,), 4), sgd, False, False)
    assert "not Adam" in graph_support(cuda, batches, torch.optim.Adam(model.parameters()), False, False)
    assert "choose one" in graph_support(cuda, batches, sgd, True, False)
    assert "single-process" in graph_support(cuda, batches, sgd, False, True)
    damped = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.1)
    assert "without dampening" in graph_support(cuda, batches, damped, False, False)


def test_graphs_on_the_cpu_train_eagerly_and_say_so(tmp_path: Path, caplog) -> None:
    plain = cnnlab.train(None, [*FAST, "epochs=1"], runs_dir=tmp_path, name="plain", quiet=True)
    caplog.set_level(logging.INFO, logger="cnnlab")
    asked = cnnlab.train(None, [*FAST, "epochs=1", "train.graphs=true"], runs_dir=tmp_path, name="asked")
    assert "note: train.graphs needs a CUDA device, this run is on cpu; training eagerly" in caplog.messages
    assert asked.record.graphs == {"used": False, "why": "train.graphs needs a CUDA device, this run is on cpu"}
    assert asked.history[0]["train_loss"] == plain.history[0]["train_loss"]
    assert plain.record.graphs is None
