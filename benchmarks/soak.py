"""Soak tests of studies that are killed and started again.

`--mode share` (the default): one study of many tiny runs, worked on by several `cnnlab study run` processes
at once while another kills one of them at random every few seconds (SIGKILL, no warning) and starts it
again. At the end every run must be `completed` exactly once (a run killed mid-way is resumed by whoever
claims it next, never started over), every metrics.csv must hold each epoch once, and no temporary file of a
killed writer may remain.

`--mode interrupt`: one `cnnlab study run --jobs 2` at a time, in a process group of its own (a terminal's
job), interrupted at a random moment *inside* its runs (after a random number of epochs of this session
and a random fraction of one more) by SIGKILL to its group, SIGTERM to it, or SIGINT to its group (Ctrl-C),
in turn; then started again, until `--interrupts` interruptions have landed; then run to the end. The
workers must end with their study process (none left training as an orphan); every run must be completed
once, several resumed (sessions > 1), none restarted from scratch or with an epoch or step twice, and each
run's weights (last and best checkpoints), metrics (timings aside) and test score equal bit for bit to an
uninterrupted study of the same file (CPU, same threads per worker).

Both print the counts and exit 1 if any of that fails.

    python benchmarks/soak.py                      # 120 runs, 3 workers, a kill every ~3 s
    python benchmarks/soak.py --runs 300 --workers 4 --kill-every 2
    nice python benchmarks/soak.py --mode interrupt # 12 runs of 12 epochs, 24 interruptions
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


# ------------------------------------------------------------------------------------ --mode interrupt
INTERRUPT_STUDY = """\
name: interrupted
base: {{model: lenet5, data: {{name: digits, train_limit: 320}}, epochs: {epochs}, batch_size: 32}}
seeds: [{seeds}]
"""
KINDS = ("SIGKILL to the group", "SIGTERM", "SIGINT to the group")


def start_study(directory: Path, study: Path, jobs: int, log: Path) -> subprocess.Popen:
    """`cnnlab study run --jobs N` in a process group of its own, as a terminal runs a job."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "cnnlab", "study", "run", str(study), "--dir", str(directory), "--quiet",
               "--jobs", str(jobs)]
    return subprocess.Popen(command, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,  # noqa: SIM115
                            start_new_session=True)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped by whoever adopted it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def rows_of(directory: Path) -> dict[str, int]:
    """Epoch rows in each run's metrics.csv."""
    return {run.parent.name: max(len(run.read_text().splitlines()) - 1, 0) for run in directory.glob("*/metrics.csv")}


def sessions_of(directory: Path) -> dict[str, int]:
    found = {}
    for path in directory.glob("*/run.json"):
        try:
            found[path.parent.name] = json.loads(path.read_text()).get("sessions", 0)
        except (OSError, ValueError):  # being replaced this moment
            continue
    return found


def interrupt_once(process: subprocess.Popen, kind: str, rng: random.Random, directory: Path,
                   epochs: int) -> dict[str, object] | None:
    """Wait until this session has trained 1-2 epochs (of any run) and a random part of one more, then
    interrupt it; None when the study ended first. What happened: whether a run was mid-way, orphans."""
    before, wanted = rows_of(directory), rng.randint(1, 2)
    while process.poll() is None:
        now = rows_of(directory)
        if sum(max(now.get(name, 0) - before.get(name, 0), 0) for name in now) >= wanted:
            break
        time.sleep(0.01)
    else:
        return None
    time.sleep(rng.uniform(0.0, 0.6))  # an epoch of 320 digits takes ~0.2-0.5 s here: somewhere inside one
    workers = children(process.pid)
    now = rows_of(directory)
    inside = any(0 < rows < epochs for rows in now.values())
    if kind == "SIGKILL to the group":
        os.killpg(process.pid, signal.SIGKILL)
    elif kind == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    try:
        code = process.wait(timeout=300)
    except subprocess.TimeoutExpired:  # the signal was not obeyed: counted as ignored, and the study killed
        os.killpg(process.pid, signal.SIGKILL)
        code = None
        process.wait()
    at_exit, deadline = rows_of(directory), time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    # an orphan: a worker still alive 5 s after its study ended, or one that trained on after it (the old
    # --jobs workers did, after a kill -9 of their study, and could even finish their runs in those 5 s)
    trained_on = [name for name, rows in rows_of(directory).items() if rows > at_exit.get(name, 0)]
    orphans = [pid for pid in workers if alive(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    expected = -signal.SIGKILL if kind == "SIGKILL to the group" else 130
    return {"kind": kind, "exit": code, "obeyed": code == expected, "inside": inside, "workers": len(workers),
            "orphans": max(len(orphans), len(trained_on)), "alive_after_5_s": len(orphans),
            "trained_on": trained_on}


def compare_runs(directory: Path, reference: Path, runs: int, epochs: int,
                 sessions_seen: dict[str, int]) -> dict[str, list[str]]:
    """Each run against the uninterrupted study's: completed, epochs and steps once, never restarted from
    scratch (its sessions only grow), weights, metrics (timings aside) and test score equal bit for bit."""
    import torch

    from cnnlab.train import read_metrics
    from cnnlab.train.callbacks import read_step_losses
    from cnnlab.train.checkpoint import load_checkpoint, split_prefix

    def untimed(run: Path) -> list[dict]:
        timed = ("train_seconds", "val_seconds", "images_per_second")
        return [{k: v for k, v in row.items() if k not in timed} for row in read_metrics(run / "metrics.csv")]

    def weights(run: Path, name: str) -> dict[str, torch.Tensor]:
        path = run / "checkpoints" / f"{name}.safetensors"
        return split_prefix(load_checkpoint(path)[0], "model.") if path.is_file() else {}

    found: dict[str, list[str]] = {"lost": [], "doubled": [], "different": []}
    for index in range(runs):
        name = f"baseline__seed{index}"
        run, ref = directory / name, reference / name
        info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        if info.get("status") != "completed" or info.get("epochs_completed") != epochs:
            found["lost"].append(name)
            continue
        steps = [(epoch, step) for epoch, step, _ in read_step_losses(run / "steps.csv")]
        if ([row["epoch"] for row in untimed(run)] != list(range(1, epochs + 1)) or len(set(steps)) != len(steps)
                or info["sessions"] < sessions_seen.get(name, 0)):
            found["doubled"].append(name)
        same = all(a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
                   for a, b in ((weights(run, n), weights(ref, n)) for n in ("last", "best")))
        reference_info = json.loads((ref / "run.json").read_text())
        if not same or untimed(run) != untimed(ref) or info["test"] != reference_info["test"]:
            found["different"].append(name)
    return found


def interrupt_soak(args: argparse.Namespace) -> int:
    runs, epochs = args.runs or 12, args.epochs or 12
    # the studies get Ctrl-C's default handling even when this soak was started in the background by a
    # script (where SIGINT starts ignored, and a cnnlab started so keeps ignoring it, as it should)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    root = Path(args.dir or tempfile.mkdtemp(prefix="cnnlab-soak-interrupt-"))
    root.mkdir(parents=True, exist_ok=True)
    study = root / "interrupted.yaml"
    study.write_text(INTERRUPT_STUDY.format(epochs=epochs, seeds=", ".join(map(str, range(runs)))))
    directory, log = root / "study", root / "study.log"
    events, sessions_seen, started = [], {}, time.monotonic()
    kinds: list[str] = []
    while len(events) < args.interrupts:
        if not kinds:  # each kind equally often, in a random order
            kinds = rng.sample(KINDS * 2, len(KINDS) * 2)
        event = interrupt_once(start_study(directory, study, args.jobs, log), kinds.pop(), rng, directory, epochs)
        if event is None:
            break  # the study finished before all the interruptions landed: a longer one is needed
        events.append(event)
        sessions_seen = {**sessions_seen, **sessions_of(directory)}
        print(f"{len(events):3d}. {event['kind']:21s} exit {event['exit']!s:4}, {event['workers']} workers, "
              f"{'inside a run' if event['inside'] else 'between runs'}, orphans {event['orphans']} (alive after 5 s: "
              f"{event['alive_after_5_s']}, trained on: {event['trained_on'] or 'none'})", flush=True)
    last = start_study(directory, study, args.jobs, log)  # to the end, undisturbed
    finished = last.wait()
    print(f"interrupted study finished (exit {finished}) after {time.monotonic() - started:.0f} s; now the "
          "uninterrupted reference", flush=True)
    reference = start_study(root / "reference", study, args.jobs, root / "reference.log").wait()
    found = compare_runs(directory, root / "reference", runs, epochs, sessions_seen)
    sessions = Counter(sessions_of(directory).values())
    temporary = [str(p) for p in directory.rglob(".*.tmp")]
    counts = Counter(event["kind"] for event in events)
    orphans = sum(event["orphans"] for event in events)
    resumed = sum(n for s, n in sessions.items() if s > 1)
    ignored = sum(not event["obeyed"] for event in events)
    result = {"interruptions": len(events), "by_kind": dict(counts), "not_obeyed": ignored,
              "inside_a_run": sum(bool(event["inside"]) for event in events), "orphans": orphans,
              "resumed_runs": resumed, "sessions": dict(sorted(sessions.items())),
              **{key: value for key, value in found.items()}, "temporary_files": temporary,
              "exits": {"last": finished, "reference": reference}, "seconds": round(time.monotonic() - started),
              "directory": str(root)}
    result["ok"] = (len(events) >= args.interrupts and not orphans and not ignored and resumed >= 3
                    and finished == reference == 0 and not any(found.values()) and not temporary)
    print(json.dumps(result, indent=1))
    print(f"{runs} runs x {epochs} epochs, --jobs {args.jobs}: {len(events)} interruptions "
          f"({', '.join(f'{n} {kind}' for kind, n in counts.items())}; {result['inside_a_run']} inside a run), "
          f"{resumed} runs resumed (sessions {result['sessions']}), {len(found['lost'])} lost, "
          f"{len(found['doubled'])} doubled, {len(found['different'])} not bitwise equal to the uninterrupted "
          f"study, {orphans} orphaned workers, {ignored} signals not obeyed -> {'OK' if result['ok'] else 'FAILED'}")
    return 0 if result["ok"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("share", "interrupt"), default="share")
    parser.add_argument("--runs", type=int, help="runs in the study (share: 120, interrupt: 12)")
    parser.add_argument("--epochs", type=int, help="epochs per run (share: 2, interrupt: 12)")
    parser.add_argument("--workers", type=int, default=3, help="share: study processes at once")
    parser.add_argument("--kill-every", type=float, default=3.0, help="share: mean seconds between kills")
    parser.add_argument("--interrupts", type=int, default=24, help="interrupt: how many")
    parser.add_argument("--jobs", type=int, default=2, help="interrupt: the study's --jobs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="work here instead of a temporary folder")
    args = parser.parse_args()
    if args.mode == "interrupt":
        return interrupt_soak(args)
    args.runs, args.epochs = args.runs or 120, args.epochs or 2
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
