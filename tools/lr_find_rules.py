"""Which reading of the learning-rate range test should be lr-find's suggestion? Measured, not argued.

For each model/data pair: the range test (`cnnlab lr-find`, 100 steps from 1e-7 to 10) under seeds 0, 1 and
2, then a study of short trainings, one row per rule at the rate the seed-0 test gave it (valley, steepest,
minimum/10), three seeds each, tabulated with cnnlab's own verdicts (`cnnlab study run`), each rule against
minimum/10 (the default before this measurement), and minimum/10 against the optimizer's default lr (the
study's baseline row). The tables, the commands and the wall times are written
to OUT/summary.md; docs/how-to/checks.md ("Which suggestion") quotes them.

    python tools/lr_find_rules.py [--out build/lr-find-rules] [PAIR ...]

About an hour on 2 CPU cores shared with other jobs (3,629 s for the four pairs). Run it with `nice`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ("minimum/10", "valley", "steepest")  # minimum/10 first: the reference row, the old default
ROW = {"minimum/10": "minimum_10", "valley": "valley", "steepest": "steepest"}
SEEDS = (0, 1, 2)

# name -> (what the pair is, the run's overrides); short runs (seconds to a minute each on 2 CPU cores)
PAIRS = {
    "lenet5_digits_sgd": ("lenet5 on digits, plain SGD, 5 epochs",
                          ["model=lenet5", "data=digits", "optimizer=sgd", "epochs=5"]),
    "convnet_digits_adam": ("convnet on digits, Adam, 5 epochs",
                            ["model=convnet", "data=digits", "optimizer=adam", "epochs=5"]),
    "lenet5_fmnist_sgd": ("lenet5 on 10,000 Fashion-MNIST images, plain SGD, 3 epochs",
                          ["model=lenet5", "data=fashion-mnist", "data.train_limit=10000", "optimizer=sgd",
                           "epochs=3"]),
    "convnet_fmnist_momentum": ("convnet on 10,000 Fashion-MNIST images, momentum SGD (the default), 3 epochs",
                                ["model=convnet", "data=fashion-mnist", "data.train_limit=10000", "epochs=3"]),
}


def cnnlab(*args: str, cwd: Path) -> tuple[str, float]:
    command = [str(Path(sys.executable).parent / "cnnlab"), *args]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout, time.perf_counter() - began


def range_tests(name: str, overrides: list[str], out: Path) -> dict[int, dict]:
    """The range test under each seed: its candidates, read back from the API's record (run.json-like)."""
    import cnnlab.api as api

    found = {}
    for seed in SEEDS:
        with api.quiet():
            result = api.lr_find(None, [*overrides, f"seed={seed}"], name=f"{name}_seed{seed}", runs_dir=out)
        found[seed] = result.to_dict()
    return found


def study_file(name: str, what: str, overrides: list[str], candidates: dict[str, float]) -> str:
    base = {}
    for item in overrides:
        key, _, value = item.partition("=")
        base[key] = value
    lines = [f"name: {name}", f"description: lr-find's rules compared, {what}",
             "base: " + json.dumps({key: _value(value) for key, value in base.items()}),
             "variations:"]
    lines += [f"  {ROW[rule]}: {{optim.lr: {candidates[rule]}}}" for rule in RULES if rule in candidates]
    # the study's baseline row is the optimizer's default lr; each rule is judged against minimum/10
    lines.append("compare_to: {" + ", ".join(f"{ROW[rule]}: minimum_10" for rule in RULES[1:]) + "}")
    lines.append(f"seeds: {list(SEEDS)}")
    return "\n".join(lines) + "\n"


def _value(text: str) -> object:
    try:
        return int(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="*", help=f"the pairs to measure (default: all): {', '.join(PAIRS)}")
    parser.add_argument("--out", default="build/lr-find-rules", help="where the studies and summary go")
    args = parser.parse_args()
    unknown = sorted(set(args.pairs) - set(PAIRS))
    if unknown:
        parser.error(f"unknown pair {unknown[0]}; pairs: {', '.join(PAIRS)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    summary = [f"# lr-find's rules, measured ({time.strftime('%Y-%m-%d')}, {cpu}, "
               f"{len(__import__('os').sched_getaffinity(0))} cores)", ""]
    for name in args.pairs or PAIRS:
        what, overrides = PAIRS[name]
        began = time.perf_counter()
        tests = range_tests(name, overrides, out)
        candidates = tests[0]["candidates"]
        path = out / f"{name}.yaml"
        path.write_text(study_file(name, what, overrides, candidates))
        table, seconds = cnnlab("study", "run", str(path), "--dir", str(out / name), "--quiet", cwd=out)
        summary += [f"## {what}", "", f"`cnnlab study run {path.name}` ({seconds:.0f} s); the range tests:", ""]
        summary += ["| seed | " + " | ".join(RULES) + " | stopped |", "|---" * (len(RULES) + 2) + "|"]
        for seed, test in tests.items():
            summary.append(f"| {seed} | " + " | ".join(f"{test['candidates'].get(rule, '-')}" for rule in RULES)
                           + f" | {test['stopped']} |")
        summary += ["", "```", path.read_text().rstrip(), "```", "", "```", table.rstrip(), "```", "",
                    f"wall {time.perf_counter() - began:.0f} s", ""]
        (out / "summary.md").write_text("\n".join(summary) + "\n")
        print(f"{name}: done in {time.perf_counter() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
