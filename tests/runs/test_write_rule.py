"""docs/architecture.md's write rule, one test each: whatever writes into a run holds its lock (eval, the
pictures); config.yaml is written atomically, only when it changes, and read back whole or refused (cnnlab
eval exits 2); a checkpoint's run id (or, older, its config hash) is checked on resume; a run whose run.json holds a hash of the
older scheme is still its study's run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab
from cnnlab.config import load_config, save_config
from cnnlab.errors import ConfigError, DataError, RunBusy
from cnnlab.experiments.runner import refuse_changed_runs
from cnnlab.experiments.study import RunSpec
from cnnlab.runs import RunDir
from tests.helpers import FAST

ONE_EPOCH = [*FAST, "epochs=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    cnnlab.train(None, ONE_EPOCH, runs_dir=runs, name="other", quiet=True, lr=0.1)
    return cnnlab.train(None, ONE_EPOCH, runs_dir=runs, name="run", quiet=True).run_dir


def copy_of(run: Path, tmp_path: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(run, tmp_path / name, ignore=shutil.ignore_patterns(".lock")))


def test_eval_and_pictures_wait_for_the_runs_lock(trained: Path, tmp_path: Path) -> None:
    run = copy_of(trained, tmp_path)
    holder = subprocess.Popen(  # another process owns the run (a trainer, a study resuming it)
        [sys.executable, "-c", "import sys, time; from cnnlab.runs import RunDir; "
         "RunDir(sys.argv[1]).require_claim(); print('held', flush=True); time.sleep(120)", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusy, match=f"run '{run}' is in use by pid {holder.pid}.*cannot write its evaluation"):
            cnnlab.evaluate(run)
        with pytest.raises(RunBusy, match="cannot draw its pictures"):
            cnnlab.api.filters(run)
        assert sorted(p.name for p in (run / "plots").iterdir()) == ["curves.png"]  # drawn when it was trained
        assert not (run / "eval_test.json").exists() and not (run / "confusion_test.csv").exists()
        assert cnnlab.evaluate(run, write=False)["count"] == 359  # reading needs no lock
    finally:
        holder.kill()
        holder.wait()
    report = cnnlab.evaluate(run)
    assert json.loads((run / "eval_test.json").read_text())["acc"] == report["acc"]
    assert cnnlab.api.filters(run)[1].is_file()


def test_resume_leaves_an_unchanged_config_yaml_untouched(trained: Path, tmp_path: Path) -> None:
    run = copy_of(trained, tmp_path)
    before = (run / "config.yaml").stat()
    result = cnnlab.train(resume=run, quiet=True)
    assert result.status == "completed"
    after = (run / "config.yaml").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_an_empty_config_yaml_is_an_error_not_the_default_config(trained: Path, tmp_path: Path) -> None:
    run = copy_of(trained, tmp_path)
    (run / "config.yaml").write_text("")
    done = subprocess.run([sys.executable, "-m", "cnnlab", "eval", str(run)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {run / 'config.yaml'}: the run's saved config is damaged: it is empty" in done.stderr
    with pytest.raises(ConfigError, match="saved config is damaged"):
        cnnlab.train(resume=run, quiet=True)


def test_a_checkpoint_of_another_run_is_refused_on_resume_even_with_allow_config_change(trained: Path,
                                                                                     tmp_path: Path) -> None:
    """Issue 34, 2: a checkpoint carries its run's id; another run's (here at another lr) is refused by name, and
    --allow-config-change (which allows changed settings, not another run's history) does not let it through.
    Before run ids, allow_config_change=True resumed from the foreign checkpoint."""
    run = copy_of(trained, tmp_path)
    foreign = trained.parent / "other" / "checkpoints" / "last.safetensors"  # lenet5 too, at lr 0.1
    shutil.copyfile(foreign, run / "checkpoints" / "last.safetensors")
    for allow in (False, True):
        with pytest.raises(DataError, match=r"last.safetensors' is not a checkpoint of run .*: it was written by "
                                            r"another run \(run id [0-9a-f]{16}; this run's is [0-9a-f]{16}\)"):
            cnnlab.train(resume=run, quiet=True, allow_config_change=allow)
    assert json.loads((run / "run.json").read_text())["sessions"] == 1  # nothing was trained or recorded


def test_a_checkpoint_without_a_run_id_is_checked_by_its_config_hash(trained: Path, tmp_path: Path) -> None:
    """Checkpoints written before run ids fall back to the config hash: another config's is refused, the run's
    own (its id taken out, as an older cnnlab wrote it) resumes."""
    from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint

    run = copy_of(trained, tmp_path)
    for source, refused in ((trained.parent / "other", True), (trained, False)):
        tensors, meta = load_checkpoint(source / "checkpoints" / "last.safetensors")
        meta.pop("run_id")
        meta.pop("checksums")
        save_checkpoint(run / "checkpoints" / "last.safetensors", tensors, meta)
        if refused:
            with pytest.raises(DataError, match=r"written under another config \(hash [0-9a-f]{16}\)"):
                cnnlab.train(resume=run, quiet=True, epochs=2, allow_config_change=True)
        else:
            assert cnnlab.train(resume=run, quiet=True, epochs=2, allow_config_change=True).status == "completed"


def test_a_run_with_a_hash_of_the_older_scheme_is_still_its_studys_run(tmp_path: Path) -> None:
    """run.json of a run made before config_hash was derived from non-default values holds the old hash
    (this literal: the old scheme's hash of this config); its config.yaml says it is the same run."""
    config = load_config(None, ["model=lenet5", "data=digits", "epochs=2"])
    run = RunDir(tmp_path / "old")
    save_config(config, run.config_path)
    run.save(cnnlab.RunRecord(status=cnnlab.Status.COMPLETED, config_hash="ae3ff1419dc7f1bd"))
    assert run.made_from(config)
    refuse_changed_runs([RunSpec("old", "baseline", 0, {}, config)], tmp_path)  # not refused
    changed = load_config(None, ["model=lenet5", "data=digits", "epochs=3"])
    assert not run.made_from(changed)
    with pytest.raises(ConfigError, match=r"made with another config than the study now plans \(train.epochs: 2 -> 3"):
        refuse_changed_runs([RunSpec("old", "baseline", 0, {}, changed)], tmp_path)
