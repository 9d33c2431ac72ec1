"""The code base passes its linter (ruff, configured in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed (pip install -e '.[dev]')")
def test_ruff_passes() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_source_file_is_over_400_lines() -> None:
    """DESIGN.md's size rule (files under ~400 lines), kept: a file that grows past it is split along its seams."""
    long = {str(path.relative_to(ROOT)): count for path in sorted((ROOT / "src" / "cnnlab").rglob("*.py"))
            if (count := len(path.read_text().splitlines())) > 400}
    assert not long, long
