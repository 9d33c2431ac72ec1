"""What every `cnnlab` command pays before it starts: the modules the CLI loads. matplotlib, scipy.stats and
torch's FLOP counter are imported where they are used (a picture, a verdict, a summary), not at start-up:
together they were ~2 s of CPU of every command on a 2-core EPYC (`python -X importtime -c 'import
cnnlab.cli'`). `cnnlab --version` loads no torch at all."""

from __future__ import annotations

import subprocess
import sys

LATE = ("matplotlib", "scipy.stats", "torch.utils.flop_counter", "torchvision")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_cli_loads_no_plotting_statistics_or_flop_counter_at_start_up() -> None:
    loaded = _loaded_after("import cnnlab.cli")
    assert "torch" in loaded and "cnnlab.api" in loaded  # the probe sees what the CLI imports
    assert not {name for name in loaded if name.startswith(LATE)}, sorted(n for n in loaded if n.startswith(LATE))


def test_version_answers_without_torch() -> None:
    code = "import sys\nsys.argv = ['cnnlab', '--version']\nfrom cnnlab._entry import run\nrun()"
    loaded = _loaded_after(code)
    assert "torch" not in loaded
    printed = subprocess.run([sys.executable, "-m", "cnnlab", "--version"], capture_output=True, text=True)
    from cnnlab import __version__

    assert (printed.returncode, printed.stdout) == (0, f"cnnlab {__version__}\n")


def test_what_was_made_late_still_works(tmp_path) -> None:
    """Each late import still happens where it is needed: a verdict's statistics, a summary's FLOPs, a picture."""
    import torch

    from cnnlab.evaluate.stats import wilson_interval
    from cnnlab.models.summary import summarize
    from cnnlab.viz.save import new_figure, save_figure

    low, high = wilson_interval(90, 100)
    assert 0.82 < low < 0.83 and 0.94 < high < 0.95  # Wilson 1927 for 90/100: (0.8256, 0.9448)
    assert summarize(torch.nn.Sequential(torch.nn.Linear(4, 3)), (4,)).flops == 2 * 4 * 3
    figure = new_figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1])
    assert save_figure(figure, tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
