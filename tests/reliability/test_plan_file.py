"""plan.json is checked like run.json (issue 34, 3): damaged (truncated, empty, wrong-typed) it is one message,
exit 2, naming the file and what to do, in every command that reads it; edited (a run's seed changed, a run
relabelled) it is detected by its own digest and refused, never counted; deleted as the message advises, `study
run` plans the study anew and reuses its finished runs. Before, `read_plan` raised a traceback on a damaged plan
and `study table` counted two seed-0 runs as "2 completed"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnlab.experiments.plan import digest_of
from tests.helpers import FAST
from tests.reliability.helpers import cli, cli_here

STUDY = f"""name: tiny
base: {{{", ".join(o.replace("=", ": ") for o in FAST)}}}
seeds: [0, 1]
variations:
  relu: {{model.activation: relu}}
"""
READERS = (("study", "table"), ("study", "plot"), ("report",))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study: baseline and relu, seeds 0 and 1 (4 runs)."""
    root = tmp_path_factory.mktemp("plan")
    (root / "tiny.yaml").write_text(STUDY)
    done = cli_here("study", "run", "tiny.yaml", "--dir", "out", "--quiet", cwd=root)
    assert done.returncode == 0, done.output
    return root


def copy_study(study: Path, tmp_path: Path) -> Path:
    shutil.copyfile(study / "tiny.yaml", tmp_path / "tiny.yaml")
    return Path(shutil.copytree(study / "out", tmp_path / "out", ignore=shutil.ignore_patterns(".lock")))


def edited(plan: dict, how: str) -> dict:
    runs = plan["runs"]
    if how == "seed":  # the second baseline run said to be seed 0: two seed-0 runs of one row
        runs[1]["seed"] = 0
    elif how == "relabelled":
        runs[2]["variation"] = "baseline"
    return plan


DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "a list": lambda text: "[]",
    "runs wrong-typed": lambda text: json.dumps({**json.loads(text), "runs": {"a": 1}}),
    "a run without a seed": lambda text: json.dumps({**json.loads(text), "runs": [{"name": "x", "variation": "v",
                                                                                  "grid": {}}]}),
    "a name out of the folder": lambda text: json.dumps(edited_names(json.loads(text))),
    "seed changed": lambda text: json.dumps(edited(json.loads(text), "seed")),
    "relabelled": lambda text: json.dumps(edited(json.loads(text), "relabelled")),
}


def edited_names(plan: dict) -> dict:
    plan["runs"][0]["name"] = "../../elsewhere"
    plan["digest"] = digest_of(plan)  # a consistent digest does not make a path a run name
    return plan


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_or_edited_plan_is_one_message_in_every_command(study: Path, tmp_path: Path, how: str) -> None:
    out = copy_study(study, tmp_path)
    plan = out / "plan.json"
    plan.write_text(DAMAGE[how](plan.read_text()))
    commands = [*READERS, ("study", "run", "tiny.yaml", "--dir", "out", "--quiet")]
    for args in commands:
        result = cli_here(*args, *(["out"] if args[-1] != "--quiet" else []), cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.output, (how, args, result.output)
        assert result.stderr.count("error:") == 1 and f"{Path('out') / 'plan.json'}: the study's plan" in \
            result.stderr, (how, args, result.stderr)
        assert "delete it and run `cnnlab study run STUDY.yaml --dir out` again" in result.stderr
    if how in ("seed changed", "relabelled"):
        assert "was changed after cnnlab wrote it" in result.stderr


def test_an_older_plan_without_a_digest_is_checked_by_its_content(study: Path, tmp_path: Path) -> None:
    """A plan written before the digest: read as before, but a duplicated seed of a row is still refused."""
    out = copy_study(study, tmp_path)
    plan = json.loads((out / "plan.json").read_text())
    del plan["digest"]
    (out / "plan.json").write_text(json.dumps(plan))
    assert cli_here("study", "table", "out", cwd=tmp_path).returncode == 0
    (out / "plan.json").write_text(json.dumps(edited(plan, "seed")))
    refused = cli_here("study", "table", "out", cwd=tmp_path)
    assert refused.returncode == 2 and "lists variation 'baseline' with seed 0 twice" in refused.stderr


def test_deleting_a_damaged_plan_as_advised_plans_the_study_anew_and_reuses_its_runs(study: Path,
                                                                                      tmp_path: Path) -> None:
    out = copy_study(study, tmp_path)
    original = json.loads((out / "plan.json").read_text())
    (out / "plan.json").unlink()
    again = cli("study", "run", "tiny.yaml", "--dir", "out", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.output
    assert json.loads((out / "plan.json").read_text()) == original
    for run in original["runs"]:  # nothing trained again
        assert json.loads((out / run["name"] / "run.json").read_text())["sessions"] == 1
    # a folder of the user's (not only runs and a study's files) is still refused
    (out / "plan.json").unlink()
    (out / "notes.txt").write_text("mine")
    refused = cli_here("study", "run", "tiny.yaml", "--dir", "out", "--quiet", cwd=tmp_path)
    assert refused.returncode == 2 and "is not a cnnlab study directory" in refused.stderr


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"variations": {"tanh": {"rows": 3}}}'])
def test_a_damaged_tune_json_is_one_message_naming_it(tmp_path: Path, content: str) -> None:
    """A tuned study's own record (tune.json; greedy.json alike): damaged, `study table` names it, exit 2."""
    from tests.experiments.test_tune_grid_parts import plan_two_tuned_variations

    plan_two_tuned_variations(tmp_path / "tuned")
    result = cli_here("study", "table", "tuned", cwd=tmp_path)
    assert result.returncode == 2 and "tune.json' is missing" in result.stderr, result.output
    (tmp_path / "tuned" / "tune.json").write_text(content)
    result = cli_here("study", "table", "tuned", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.output, result.output
    assert f"{Path('tuned') / 'tune.json'} is damaged" in result.stderr
