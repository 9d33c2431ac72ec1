"""The wheel a user installs (`pip install cnnlab`), outside the clone (issue 33, item 2): built from this
checkout's files, installed into a fresh virtual environment, and used from a folder that is not the clone:
the README's first session runs as printed, and a study that comes with cnnlab runs by name.

No download: the wheel is installed without its dependencies, which the fresh environment finds in this
environment's site-packages (a .pth line, listed after its own site-packages, so cnnlab is the wheel's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.test_readme import fits, sessions

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **options)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    return done


def build_wheel(where: Path) -> Path:
    """The wheel of this checkout's tracked layout (pyproject.toml, setup.py, README, src/, studies/), built from
    a copy so nothing is written into the clone."""
    source = where / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("src", "studies"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(where / "dist"), str(source)])
    wheels = list((where / "dist").glob("cnnlab-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def fresh_venv(where: Path, wheel: Path) -> Path:
    venv = where / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    # --ignore-installed: the clone's own editable cnnlab of the same version is visible through the .pth line,
    # and pip would otherwise call the wheel 'already satisfied' and install no script; the environment is
    # stripped of what would send the install elsewhere (a user site, a target, a prefix)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
         "--ignore-installed", "--force-reinstall", str(wheel)], env=clean)
    scripts = sorted(p.name for p in (venv / "bin").iterdir())
    assert "cnnlab" in scripts, ("the wheel installed no cnnlab script into the fresh environment", scripts)
    return venv


def test_the_wheel_outside_the_clone_runs_the_first_session_and_a_packaged_study(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    work = tmp_path / "elsewhere"
    work.mkdir()
    bare = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cnnlab").exists())
    env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
           "PATH": f"{venv / 'bin'}{os.pathsep}{bare}", "COLUMNS": "200"}
    where = run(["bash", "-c", "command -v cnnlab && python -c 'import cnnlab.studies as s, cnnlab; "
                 "print(cnnlab.__file__); print(s.__file__)'"], cwd=work, env=env).stdout.split()
    assert where[0] == str(venv / "bin" / "cnnlab")
    assert all(Path(path).is_relative_to(venv) for path in where[1:]), where  # the wheel's, not the clone's
    for command, expected in sessions()[0]:  # the README's first session, as printed
        done = run(["bash", "-c", command], cwd=work, env=env)
        actual = (done.stdout + done.stderr).rstrip("\n").splitlines()
        assert fits(expected, actual), f"$ {command}\nREADME:\n" + "\n".join(expected) + "\nnow:\n" + "\n".join(actual)
    listed = run(["bash", "-c", "cnnlab study list"], cwd=work, env=env).stdout
    assert "eq2425_report" in listed and "bf16_cpu" in listed
    study = run(["bash", "-c", "cnnlab study run bf16_cpu data.name=digits data.train_limit=128 epochs=1 "
                 "batch_size=32 --seeds 0 --quiet"], cwd=work, env=env)
    assert "study bf16_cpu: 2 runs (2 variations) into runs/bf16_cpu" in study.stdout
    assert (work / "runs" / "bf16_cpu" / "table.md").is_file()
