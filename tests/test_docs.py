"""The documentation site builds with `mkdocs build --strict` (no broken link, no page missing from the nav,
no warning), and its reference pages are generated from the code: every config key, every command and
option, every run.json field appears with what the code says about it."""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import docs_reference  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.slow
def test_every_config_key_is_in_the_reference_with_its_meaning(site: Path) -> None:
    from cnnlab.config import sections

    page = " ".join(text_of(site / "reference" / "config.html").split())
    hints = typing.get_type_hints(sections.RunConfig)
    for section in dataclasses.fields(sections.RunConfig):
        cls = hints[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        comments = docs_reference.field_comments(cls)
        for item in dataclasses.fields(cls):
            if item.name != "options":
                assert f"{section.name}.{item.name}" in page
                assert " ".join(comments[item.name].replace("`", "").split())[:50] in page, item.name
    assert "model.filters" in page and "optim.nus" in page and "schedule.step_size" in page


@pytest.mark.slow
def test_every_command_and_option_is_in_the_reference(site: Path) -> None:
    from cnnlab.cli import build_parser

    page = text_of(site / "reference" / "commands.html")
    for path, parser in docs_reference._subcommands(build_parser(), "cnnlab"):
        assert path in page
        for action in parser._actions:
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                for option in action.option_strings:
                    assert option in page, (path, option)


@pytest.mark.slow
def test_the_api_reference_and_the_notebooks_are_pages(site: Path) -> None:
    from cnnlab.runs.record import RunRecord

    api = text_of(site / "reference" / "api.html")
    assert "Train one run. keywords are config overrides" in api  # train's docstring, by mkdocstrings
    run_json = text_of(site / "reference" / "run-directory.html")
    assert all(field.name in run_json for field in dataclasses.fields(RunRecord) if field.name != "extra")
    notebook = text_of(site / "tutorials" / "first-session-notebook.html")  # rendered by mkdocs-jupyter
    assert "cnnlab.train(" in notebook


def test_a_config_key_without_a_meaning_fails_the_reference() -> None:
    @dataclasses.dataclass
    class Section:
        explained: int = 1  # what it means
        unexplained: int = 2

    with pytest.raises(ValueError, match="unexplained has no comment"):
        docs_reference._section("made_up", Section)


def test_generated_markers_are_filled_and_unknown_ones_refused() -> None:
    assert "`data.val_fraction`" in docs_reference.fill("<!-- generated: config-keys -->\n")
    with pytest.raises(ValueError, match="no such generator"):
        docs_reference.fill("<!-- generated: nothing-like-this -->\n")
