"""run.json read back: every field checked against its type on read (one ConfigError naming the file, the
field and what it should hold), a newer schema refused (never resumed over), and whatever a record holds
once it loads, a study's table and a run's report can show it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cnnlab.errors import ConfigError
from cnnlab.experiments.table import aggregate, formatted, run_row
from cnnlab.runs import RunDir, RunRecord, Status
from cnnlab.runs.record import SCHEMA
from cnnlab.viz.report import run_report

# what cnnlab writes for a finished run (the values of a real one, shortened)
GOOD = RunRecord(
    status=Status.COMPLETED, reason="", config_hash="ab12", seed=0, device="cpu", precision="fp32",
    channels_last=False, world_size=1, versions={"cnnlab": "0.1.0", "torch": "2.10"}, parameters=61706,
    data={"dataset": "digits", "classes": ["0", "1"]}, run_dir="runs/r", owner={"pid": 7, "host": "h", "since": "t"},
    started="2025-01-01T00:00:00", ended="2025-01-01T00:01:00", sessions=1, epochs_completed=2, steps=20,
    best_epoch=2, monitor="val_acc", final={"train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.6, "val_acc": None,
                                            "val_top5": None},
    test={"loss": 0.4, "acc": 0.9, "top5": 1.0, "count": 359}, train_seconds=1.5, wall_seconds=3.0,
    images_per_second=4000.0, freeze={"mode": "features", "frozen": 100, "trainable": 10},
    early_stop={"criterion": "patience", "fired": True, "epoch": 2, "why": "no better"},
).to_dict()
FIELDS = sorted(GOOD)


def write_record(path: Path, data: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps(data))
    (path / "config.yaml").write_text("model: {name: lenet5}\n")  # what makes a folder a run (RunDir.exists)
    return path / "run.json"


def test_a_complete_record_round_trips() -> None:
    assert RunRecord.from_dict(GOOD).to_dict() == GOOD


@pytest.mark.parametrize("field,value,expected", [
    ("test", "x", "field 'test' is \"x\" (text), expected an object or null"),
    ("epochs_completed", "two", "field 'epochs_completed' is \"two\" (text), expected a whole number"),
    ("epochs_completed", True, "field 'epochs_completed' is true (a boolean), expected a whole number"),
    ("sessions", -1, "field 'sessions' is -1, expected a whole number >= 0"),
    ("train_seconds", None, "field 'train_seconds' is null, expected a number"),
    ("images_per_second", math.inf, "field 'images_per_second' is Infinity, expected a finite number >= 0"),
    ("parameters", 10**30, "field 'parameters' is 1000000000000000000000000000000, expected a whole number"),
    ("versions", {"torch": 2}, "field 'versions' is {\"torch\": 2} (an object), expected an object of text values"),
    ("data_notes", "one note", "field 'data_notes' is \"one note\" (text), expected a list of text items or null"),
    ("test", {"acc": "x"}, "field 'test.acc' is \"x\" (text), expected a number from 0 to 1 or null"),
    ("test", {"acc": 97.5}, "field 'test.acc' is 97.5, expected a number from 0 to 1 or null"),
    ("freeze", {"frozen": 1.5}, "field 'freeze.frozen' is 1.5, expected a whole number >= 0 or null"),
    ("status", ["completed"], "field 'status' is [\"completed\"] (a list), expected one of running, completed"),
    ("status", "done", "field 'status' is \"done\" (text), expected one of running, completed"),
    ("schema", 2, "field 'schema' is 2, expected 'cnnlab.run/N'"),
])
def test_a_wrong_typed_field_is_one_error_naming_the_file_and_the_field(tmp_path, field, value, expected) -> None:
    path = write_record(tmp_path / "run", {**GOOD, field: value})
    with pytest.raises(ConfigError) as error:
        RunRecord.load(path)
    assert str(error.value).startswith(f"{path}: {expected}"), str(error.value)


def test_a_newer_schema_is_refused_saying_which_cnnlab_wrote_it_and_is_never_written_over(tmp_path) -> None:
    newer = {**GOOD, "schema": "cnnlab.run/99", "versions": {"cnnlab": "7.0.0"}, "test": "a new shape"}
    path = write_record(tmp_path / "run", newer)
    with pytest.raises(ConfigError) as error:
        RunDir(tmp_path / "run").record()
    message = str(error.value)
    assert f"{path} was written by cnnlab 7.0.0 in run schema 'cnnlab.run/99'" in message
    assert f"knows the schemas up to '{SCHEMA}'" in message and "nothing was changed" in message
    with pytest.raises(ConfigError, match="cnnlab.run/99"):  # neither read for a command nor updated in place
        RunDir(tmp_path / "run").require()
    with pytest.raises(ConfigError, match="cnnlab.run/99"):
        RunDir(tmp_path / "run").update(status=Status.RUNNING)
    with pytest.raises(ConfigError, match="cnnlab.run/99"):  # a record carried over from one cannot be saved
        RunRecord(schema="cnnlab.run/99").save(tmp_path / "other.json")
    assert json.loads(path.read_text()) == newer and not (tmp_path / "other.json").exists()
    assert RunRecord.from_dict({**GOOD, "schema": "cnnlab.run/1"}).schema == "cnnlab.run/1"  # older: read


def test_a_table_shows_an_unreadable_record_as_such_and_the_rest_as_usual(tmp_path) -> None:
    write_record(tmp_path / "good", GOOD)
    write_record(tmp_path / "bad", {**GOOD, "test": "x"})
    rows = [run_row(tmp_path / name, {"name": name, "variation": name, "seed": 0}) for name in ("good", "bad")]
    assert rows[0]["status"] == "completed" and rows[0]["test_acc"] == 0.9
    assert rows[1]["status"] == "unreadable" and "bad/run.json: field 'test'" in rows[1]["problem"]
    headers, cells = formatted(aggregate(rows))
    status, top1 = headers.index("status"), headers.index("top-1")
    assert cells[1][status] == "unreadable" and cells[1][top1] == "-"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    | st.dictionaries(st.sampled_from(["acc", "top5", "loss", "count", "frozen", "mode", "fired", "criterion"]),
                      inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1, max_size=2))
@example(changes={"checks": True})  # an unparameterised `dict` field took any value (CI found it)
@example(changes={"lr_find": {"lr": "x", "steepest_lr": None}, "checks": {"skipped": 3, "labels": {"status": 1}}})
def test_fuzzed_fields_load_or_raise_our_error_and_what_loads_can_be_tabulated_and_reported(tmp_path, changes) -> None:
    """Random JSON values in any fields of a real record: RunRecord loads them or raises a ConfigError, never
    another exception; and a record that loads goes through a study's table and a run's report."""
    path = write_record(tmp_path / "run", {**GOOD, **changes})
    try:
        RunRecord.load(path)
    except ConfigError as error:
        assert str(path) in str(error)
        return
    row = run_row(tmp_path / "run", {"name": "run", "variation": "v", "seed": 0})
    assert row["status"] != "unreadable"
    formatted(aggregate([row, dict(row), {**row, "variation": "w"}]))  # mean and std over two seeds
    assert "<table>" in run_report(tmp_path / "run")


@settings(max_examples=400, deadline=None)
@given(data=JSON | st.fixed_dictionaries({"status": JSON, "versions": JSON, "schema": JSON}))
def test_any_json_document_loads_or_raises_our_error(data) -> None:
    assert RunRecord.is_cnnlab(data) in (True, False)  # what --overwrite asks before it deletes a folder
    try:
        RunRecord.from_dict(data, "run.json")
    except ConfigError:
        pass
