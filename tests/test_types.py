"""`make test` type-checks the package (issue 24, section 3): mypy over src/cnnlab with pyproject.toml's
[tool.mypy] settings, strict on the public API (cnnlab.api), the config and the run records (cnnlab.config,
cnnlab.runs), mypy's defaults elsewhere. Its cache (.mypy_cache) makes a second run take about a second; a
cold run took about 50 s on the two-core development machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow(first=True)  # cold: tens of seconds (torch's annotations are read once, then cached)
def test_the_package_type_checks() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_strict_modules_are_the_api_config_and_runs() -> None:
    """The strict flags apply to the modules the issue names, and only a global `strict` could not do that."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = [o for o in settings["overrides"] if o.get("disallow_untyped_defs")]
    assert len(strict) == 1 and set(strict[0]["module"]) == {
        "cnnlab.api", "cnnlab.api.*", "cnnlab.config", "cnnlab.config.*", "cnnlab.runs", "cnnlab.runs.*"}
    assert all(strict[0][flag] for flag in ("disallow_untyped_calls", "disallow_any_generics", "warn_return_any",
                                             "check_untyped_defs", "no_implicit_reexport", "strict_equality"))
    assert "strict" not in settings and settings["files"] == ["src/cnnlab"]
