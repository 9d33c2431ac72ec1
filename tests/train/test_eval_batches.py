"""Evaluation batches on the CPU hold at most CPU_EVAL_BATCH images whatever train.eval_batch_size says
(larger batches fall out of the caches: convnet evaluated at half the speed at 1024 as at 256), with every
image scored once and the scores unchanged; 'full' stays the whole split, and training batches are untouched."""

from __future__ import annotations

import pytest
import torch

from cnnlab.config import load_config
from cnnlab.data import DataSpec, ImageSet
from cnnlab.evaluate import evaluate_model
from cnnlab.train import LoaderSpec, Runtime, make_batches, make_model
from cnnlab.train.build import CPU_EVAL_BATCH

CPU = Runtime(torch.device("cpu"), None, True)


def images(count: int) -> tuple[ImageSet, DataSpec]:
    generator = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (count, 1, 8, 8), dtype=torch.uint8, generator=generator),
                    torch.randint(0, 3, (count,), generator=generator))
    return data, DataSpec("test", ("a", "b", "c"), 1, 8, (0.5,), (0.25,), {}, "test")


def test_cpu_evaluation_batches_are_capped_and_score_every_image_alike() -> None:
    data, spec = images(600)
    config = load_config(None, ["model=mlp", "device=cpu"])  # eval_batch_size 1024 by default
    assert config.train.eval_batch_size == 1024 and CPU_EVAL_BATCH == 256
    capped = make_batches(data, spec, LoaderSpec.for_evaluation(config), CPU)
    assert capped.batch_size == 256 and [len(labels) for _, labels in capped] == [256, 256, 88]
    assert make_batches(data, spec, LoaderSpec.for_evaluation(config, 100), CPU).batch_size == 100
    assert make_batches(data, spec, LoaderSpec("full"), CPU).batch_size == 600  # the whole split, as asked
    assert make_batches(data, spec, LoaderSpec(512, training=True), CPU).batch_size == 512  # training: as set

    torch.manual_seed(0)
    model = make_model(config.model, spec, CPU)
    whole = make_batches(data, spec, LoaderSpec("full"), CPU)
    one, split = (evaluate_model(model, b, 3, per_image=True) for b in (whole, capped))
    assert torch.equal(one["predicted"], split["predicted"]) and one["count"] == split["count"] == 600
    assert split["loss"] == pytest.approx(one["loss"], rel=1e-6) and split["acc"] == one["acc"]
