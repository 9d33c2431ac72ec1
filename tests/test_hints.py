"""The commands cnnlab prints for a person to paste (issue 33, item 10): shell-quoted, so a path with a space
stays one word. Checked on the real program's messages (parsed as a shell parses them) and, for every hint in
the source, by reading the f-strings that build them."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.helpers import FAST

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnlab"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def hinted(text: str, start: str) -> list[str]:
    """The words of the command that follows `start` in `text` (up to a backtick or the line's end), as a
    shell would split them."""
    tail = text[text.index(start):].splitlines()[0]
    return shlex.split(tail.split("`")[0])


def test_a_study_file_given_as_a_run_config_names_the_command_with_its_path_quoted(tmp_path: Path) -> None:
    folder = tmp_path / "my studies"
    folder.mkdir()
    (folder / "it's.yaml").write_text("name: x\nbase: {data: digits}\nvariations: {a: {}}\n")
    result = run_cli("train", "my studies/it's.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert hinted(result.stderr, "cnnlab study run") == ["cnnlab", "study", "run", "my studies/it's.yaml"]


def test_a_taken_run_name_offers_its_resume_with_the_path_quoted(tmp_path: Path) -> None:
    runs = "my runs"  # a run's name is one plain word; the folder of runs may be any path
    assert run_cli("train", *FAST, "epochs=1", "--name", "ab", "--runs-dir", runs, "--quiet",
                   cwd=tmp_path).returncode == 0
    again = run_cli("train", *FAST, "epochs=1", "--name", "ab", "--runs-dir", runs, cwd=tmp_path)
    assert again.returncode == 2
    offer = again.stderr[again.stderr.index("--resume "):].split(", choose")[0]
    assert shlex.split(offer) == ["--resume", "my runs/ab"], again.stderr


def test_an_export_says_how_to_predict_with_it_and_that_command_runs_in_a_shell(tmp_path: Path) -> None:
    assert run_cli("train", *FAST, "epochs=1", "--name", "r", "--runs-dir", "runs", "--quiet",
                   cwd=tmp_path).returncode == 0
    exported = run_cli("export", "runs/r", "--format", "torchscript", "--out", "my exports/model.pt",
                       cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    samples = run_cli("data", "export-samples", "digits", "-n", "1", cwd=tmp_path)
    image = samples.stdout.split()[0]
    line = next(line for line in exported.stdout.splitlines() if line.startswith("predict with: "))
    command = line.removeprefix("predict with: ").replace("IMAGE...", shlex.quote(image))
    assert shlex.split(command)[:3] == ["cnnlab", "predict", "my exports/model.pt"]
    # through a real shell, as a person pastes it (the cnnlab of this interpreter first on PATH)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pasted = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout.startswith(image)


# a hint: 'cnnlab <command> ... ' or '--resume ' (a command's words) right before an interpolated value
HINT = re.compile(r"(`cnnlab [a-z][\w -]*|: cnnlab [a-z][\w -]*|--resume ?)$")
QUOTING = ("command_line", "shlex.quote", "shlex.join")


def unquoted_hints(path: Path) -> list[str]:
    """'file:line' of every f-string that puts a value into a printed command without quoting it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.JoinedStr):
            continue
        parts = node.values
        for before, value in zip(parts, parts[1:]):
            if not (isinstance(before, ast.Constant) and isinstance(value, ast.FormattedValue)):
                continue
            if HINT.search(str(before.value)) and not any(q in ast.unparse(value.value) for q in QUOTING):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(value.value)}")
    return found


def test_no_printed_command_interpolates_a_value_without_shell_quoting() -> None:
    found = [hint for path in sorted(PACKAGE.rglob("*.py")) for hint in unquoted_hints(path)]
    assert not found, "\n".join(found)


def test_missing_data_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    """Every dataset cnnlab downloads itself: its missing-data message ends with the command, into the root
    the user named, which `cnnlab data download` takes as it is."""
    from cnnlab.data.download import RESOURCES

    empty = tmp_path / "no data"
    takes = subprocess.run([sys.executable, "-m", "cnnlab", "data", "download", "--help"], capture_output=True,
                           text=True, timeout=300).stdout
    for name in sorted(RESOURCES):
        missing = subprocess.run([sys.executable, "-m", "cnnlab", "train", f"data={name}", "--data-root", str(empty)],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
        command = missing.stderr.split("or fetch it: `")[1].split("`")[0]
        assert shlex.split(command) == ["cnnlab", "data", "download", name, "--root", str(empty)], command
        assert name in takes
    folder = subprocess.run([sys.executable, "-m", "cnnlab", "train", "data=imagefolder", "--data-root", str(empty)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert folder.returncode == 2 and "data download" not in folder.stderr  # nothing to fetch: a folder of one's own
