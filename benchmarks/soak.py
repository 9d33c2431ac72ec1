"""Soak test: one study of many tiny runs, worked on by several `cnnlab study run` processes at once while
another kills one of them at random every few seconds (SIGKILL, no warning) and starts it again.

At the end every run must be `completed` exactly once (a run killed mid-way is resumed by whoever claims
it next, never started over), every metrics.csv must hold each epoch once, and no temporary file of a
killed writer may remain. Prints the counts and exits 1 if any of that fails.

    python benchmarks/soak.py                      # 120 runs, 3 workers, a kill every ~3 s
    python benchmarks/soak.py --runs 300 --workers 4 --kill-every 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

STUDY = """\
name: soak
base: {{model: lenet5, data: {{name: digits, train_limit: 96}}, epochs: {epochs}, batch_size: 32}}
seeds: [{seeds}]
"""


def start_worker(directory: Path, study: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "CNNLAB_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "cnnlab", "study", "run", str(study), "--dir", str(directory), "--quiet"]
    return subprocess.Popen(command, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115


def check(directory: Path, runs: int, epochs: int) -> dict[str, object]:
    statuses: Counter[str] = Counter()
    sessions: Counter[int] = Counter()
    bad_rows, temp_files = [], []
    for run in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        record = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        statuses[record.get("status", "missing")] += 1
        sessions[record.get("sessions", 0)] += 1
        lines = (run / "metrics.csv").read_text().splitlines()[1:] if (run / "metrics.csv").is_file() else []
        epochs_seen = [line.split(",")[0] for line in lines]
        if epochs_seen != [str(e) for e in range(1, epochs + 1)]:
            bad_rows.append(run.name)
        temp_files += [str(p) for p in run.rglob(".*.tmp")]
    return {"runs": sum(statuses.values()), "statuses": dict(statuses), "sessions": dict(sorted(sessions.items())),
            "runs_with_bad_metrics": bad_rows, "temporary_files": temp_files,
            "ok": statuses.get("completed", 0) == runs and not bad_rows and not temp_files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds between kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="work here instead of a temporary folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(args.dir or tempfile.mkdtemp(prefix="cnnlab-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    study = root / "soak.yaml"
    study.write_text(STUDY.format(epochs=args.epochs, seeds=", ".join(map(str, range(args.runs)))))
    directory = root / "study"
    logs = [root / f"worker{i}.log" for i in range(args.workers)]
    workers = [start_worker(directory, study, log) for log in logs]
    kills, restarts, started = 0, 0, time.monotonic()
    while any(w.poll() is None for w in workers):
        time.sleep(rng.expovariate(1 / args.kill_every))
        alive = [i for i, w in enumerate(workers) if w.poll() is None]
        if not alive:
            break
        victim = rng.choice(alive)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        kills += 1
        if rng.random() < 0.85 or len(alive) == 1:  # mostly restart it: someone must finish the study
            workers[victim] = start_worker(directory, study, logs[victim])
            restarts += 1
    last = start_worker(directory, study, logs[0])  # one clean pass: picks up whatever the last kill left
    last.wait()
    seconds = time.monotonic() - started
    result = check(directory, args.runs, args.epochs)
    result.update(kills=kills, restarts=restarts, seconds=round(seconds, 1), directory=str(root))
    print(json.dumps(result, indent=1))
    print(f"{args.runs} runs, {args.workers} workers, {kills} SIGKILLs, {restarts} restarts in {seconds:.0f} s: "
          f"{result['statuses'].get('completed', 0)} completed, sessions per run {result['sessions']}, "
          f"{len(result['runs_with_bad_metrics'])} runs with a wrong metrics.csv, "
          f"{len(result['temporary_files'])} temporary files left -> {'OK' if result['ok'] else 'FAILED'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
