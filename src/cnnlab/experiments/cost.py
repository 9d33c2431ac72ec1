"""What a study will cost before it runs (`cnnlab study run --dry-run`): each distinct computation of its runs
(model, input, batch, precision) measured for a few steps on this machine, then multiplied out.

A run's time = its data loading (measured once per dataset) + steps x the measured training step + the images
it evaluates (validation every epoch, the test set once) x the measured evaluation time per image. The step
is the Trainer's own (train/step.py) on a batch of the run's shape, in the runtime `cnnlab train` would
choose (train/runtime.py), at the threads each run gets with --jobs N (cores / N, as the study runner sets
them). A greedy study's alternatives are costed on the base (the winners they will be combined with are not
known yet), once per stage and seed. Checked against real studies in docs/explanation/speed.md.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..config import RunConfig
from ..config.resolve import to_dict
from ..train.build import CPU_EVAL_BATCH, make_model, make_optimizer, splits_of, train_batch_size
from ..train.cpu import cpu_model_name
from ..train.runtime import Runtime, resolve_runtime
from ..train.step import EagerStep, steps_per_epoch
from .study import RunSpec

STEPS = 5  # timed training steps per computation (their median), after one untimed (oneDNN's primitives)


@dataclass(frozen=True)
class RunCost:
    name: str
    variation: str
    steps: int  # optimizer steps over all epochs
    step_seconds: float  # one training step, measured
    eval_images: int  # validation images x epochs + test images
    eval_seconds_per_image: float
    load_seconds: float  # reading the dataset, measured once per dataset

    @property
    def train_seconds(self) -> float:
        return self.steps * self.step_seconds

    @property
    def seconds(self) -> float:
        return self.load_seconds + self.train_seconds + self.eval_images * self.eval_seconds_per_image


def _timed(call: Any, count: int) -> float:
    """The median of `count` timed calls after an untimed one (a neighbour's burst moves one, not the median)."""
    call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(config: RunConfig, spec: Any, runtime: Runtime, batch: int) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluated image) of `config`'s model on random images."""
    with torch.random.fork_rng(devices=[]):
        model = make_model(config.model, spec, runtime)
        shape = (spec.channels, spec.image_size, spec.image_size)
        layout = torch.channels_last if runtime.channels_last else torch.contiguous_format
        images = torch.randn(batch, *shape, device=runtime.device).contiguous(memory_format=layout)
        labels = torch.randint(0, spec.num_classes, (batch,), device=runtime.device)
        step = EagerStep(model, make_optimizer(config.optim, model), runtime.autocast)
        train = _timed(lambda: step([(images, labels)]), STEPS)
        size = min(config.train.eval_batch_size, CPU_EVAL_BATCH if runtime.device.type == "cpu" else 1 << 30, batch)
        model.eval()

        def evaluate() -> None:
            with torch.inference_mode(), runtime.scoring():
                model(images[:size])

        per_image = _timed(evaluate, STEPS) / size
    return train, per_image


def computation_key(config: RunConfig) -> str:
    """What decides a step's time: the model, the data's shape, batch, precision, memory format, optimizer."""
    plain = to_dict(config)
    kept = {"model": plain["model"], "optim": plain["optim"]["name"], "data": plain["data"],
            "train": {k: plain["train"][k] for k in ("batch_size", "precision", "channels_last", "grad_accum_steps")},
            "device": plain["device"]}
    return json.dumps(kept, sort_keys=True, default=str)


@dataclass(frozen=True)
class StudyCost:
    runs: list[RunCost]  # every run of the plan, those already finished included (see `pending`)
    jobs: int
    threads: int  # per run
    cpu: str
    finished: frozenset[str] = frozenset()  # runs that are results already in the study directory: skipped

    @property
    def pending(self) -> list[RunCost]:
        """The runs `study run` would train (a finished run is skipped, so it costs nothing)."""
        return [run for run in self.runs if run.name not in self.finished]

    @property
    def seconds(self) -> float:
        return sum(run.seconds for run in self.pending)

    def until_decided_seconds(self, max_seeds: int) -> tuple[int, float]:
        """--until-decided's most: (runs, seconds) it could add when every row stays undecided until it has
        `max_seeds` seeds, each added run costing its row's mean run."""
        rows: dict[str, list[RunCost]] = {}
        for run in self.runs:
            rows.setdefault(run.variation, []).append(run)
        added = [(max(0, max_seeds - len(runs)), sum(r.seconds for r in runs) / len(runs)) for runs in rows.values()]
        return sum(count for count, _ in added), sum(count * each for count, each in added)

    @property
    def wall_seconds(self) -> float:
        """With `jobs` processes at once (each measured at its own threads)."""
        return self.seconds / self.jobs


def predict(runs: Sequence[RunSpec], jobs: int = 1, finished: Sequence[str] = ()) -> StudyCost:
    """Each run's predicted cost, measuring each distinct computation once (at cores / jobs threads);
    `finished`: the runs already results in the study directory, which the total leaves out."""
    threads = torch.get_num_threads()
    try:
        costs = _predict(runs, max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0)
        return StudyCost(costs, jobs, torch.get_num_threads(), cpu_model_name(), frozenset(finished))
    finally:
        torch.set_num_threads(threads)


def _predict(runs: Sequence[RunSpec], threads: int) -> list[RunCost]:
    datasets: dict[str, tuple[Any, float]] = {}
    measured: dict[str, tuple[float, float]] = {}
    costs = []
    for spec in runs:
        config = spec.config
        data_key = json.dumps(to_dict(config)["data"], sort_keys=True, default=str)
        if data_key not in datasets:
            started = time.perf_counter()
            splits = splits_of(config)
            datasets[data_key] = (splits, time.perf_counter() - started)
        splits, load_seconds = datasets[data_key]
        batch = train_batch_size(config.train.batch_size, len(splits.train))
        key = computation_key(config)
        if key not in measured:
            runtime = resolve_runtime(config)
            if threads:  # what the study runner gives each of its --jobs processes
                torch.set_num_threads(threads)
            measured[key] = measure(config, splits.spec, runtime, batch)
        train_step, per_image = measured[key]
        accumulation = config.train.grad_accum_steps
        steps = steps_per_epoch(len(splits.train) // batch, accumulation) * config.train.epochs
        val = len(splits.val) if splits.val is not None else 0
        test = len(splits.test) if splits.test is not None else 0
        costs.append(RunCost(spec.name, spec.variation, steps, train_step * accumulation,
                             val * config.train.epochs + test, per_image, load_seconds))
    return costs


def by_variation(costs: Sequence[RunCost]) -> dict[str, dict[str, Any]]:
    """The table's rows: per variation, its runs, steps per run, step time and seconds."""
    rows: dict[str, dict[str, Any]] = {}
    for cost in costs:
        row = rows.setdefault(cost.variation, {"runs": 0, "steps": cost.steps, "step_ms": cost.step_seconds * 1e3,
                                               "train_seconds": 0.0, "seconds": 0.0})
        row["runs"] += 1
        row["train_seconds"] += cost.train_seconds
        row["seconds"] += cost.seconds
    return rows


def greedy_runs(study: Any) -> list[RunSpec]:
    """A greedy study's runs as the dry-run costs them: every stage's alternatives on the base, each seed;
    after the first stage, an alternative that changes nothing (`keep: {}`) only when keep is retrained (else
    it is the previous winner's runs, reused: experiments/greedy.py)."""
    from ..config import resolve
    from .greedy import keep_retrained
    from .study_values import run_seeds

    runs = []
    for number, stage in enumerate(study.stages, start=1):
        for alternative, layer in stage.alternatives.items():
            if number > 1 and not layer and not keep_retrained(study):
                continue
            seeds, origin = run_seeds(study.seeds, "seeds", layer)
            for seed in seeds:
                config = resolve(study.base, layer, {"seed": (seed, origin)})
                runs.append(RunSpec(f"{stage.name}__{alternative}__seed{seed}", f"{stage.name}:{alternative}", seed,
                                    {}, config))
    return runs
