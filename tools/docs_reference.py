"""The reference pages' tables, generated from the code they describe (never written twice).

A mkdocs hook (mkdocs.yml `hooks:`): a page line `<!-- generated: NAME -->` is replaced, when the site is
built, by the Markdown that GENERATORS[NAME] returns:

- `config-keys`: every key of a run config, from the frozen dataclasses of config/sections.py (the type
  from the annotation, the default from the field, the meaning from the comment beside or above the field),
  and the short spellings of config/layers.py;
- `models`, `optimizers`, `schedules`, `datasets`: each registry entry and its options (from its builder's
  typed signature, the schema the config itself reads);
- `commands`: every command and option of the argparse parser that `cnnlab` runs (cli.build_parser);
- `run-json`: the fields of run.json (runs/record.py's RunRecord) and the Status values.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import html
import inspect
import io
import re
import tokenize
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: fill every `<!-- generated: NAME -->` line of a page."""
    return fill(markdown)


def fill(markdown: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"<!-- generated: {name} -->: no such generator (known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARK.sub(replace, markdown)


# ------------------------------------------------------------------------------------------ helpers
def cell(text: Any) -> str:
    """A Markdown table cell: code-free text with | escaped and no line breaks."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def code(value: Any) -> str:
    return f"`{value}`".replace("|", "\\|")


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def shown(value: Any) -> str:
    """A default as it is written in YAML or on the command line."""
    if value is None:
        return code("null")
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, tuple):
        return code("[" + ", ".join(str(v) for v in value) + "]")
    if value is inspect.Parameter.empty:
        return "required"
    return code(value)


def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of a dataclass, read from its source: the comment at the end of the
    field's line(s), after the comment lines right above it."""
    source = inspect.getsource(inspect.getmodule(cls))
    comments = {start[0]: text.lstrip("#").strip() for kind, text, start, _, _ in
                tokenize.generate_tokens(io.StringIO(source).readline) if kind == tokenize.COMMENT}
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == cls.__name__):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            above, line = [], item.lineno - 1
            while line in comments and source.splitlines()[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            beside = [comments[n] for n in range(item.lineno, (item.end_lineno or item.lineno) + 1) if n in comments]
            found[item.target.id] = " ".join(above + beside)
    return found


def meaning(comments: dict[str, str], name: str, cls: type) -> str:
    """A field's comment, required: a key without one is a key the reference cannot explain."""
    if not comments.get(name):
        raise ValueError(f"{cls.__module__}.{cls.__name__}.{name} has no comment saying what it means; add one "
                         "beside the field (the reference pages are generated from it)")
    return cell(comments[name])


# ------------------------------------------------------------------------------------------ config keys
def config_keys() -> str:
    from cnnlab.config import sections
    from cnnlab.config.layers import ALIASES
    from cnnlab.options import type_name

    out = ["Short keys (on the command line, in YAML and as keyword arguments of `cnnlab.train`):\n",
           table(["short key", "means"], [[code(k), code(v)] for k, v in ALIASES.items()])]
    top = sections.RunConfig
    hints = typing.get_type_hints(top)
    comments = field_comments(top)
    rows = []
    for item in dataclasses.fields(top):
        if dataclasses.is_dataclass(hints[item.name]):
            continue
        rows.append([code(item.name), cell(type_name(hints[item.name])), shown(item.default),
                     meaning(comments, item.name, top)])
    out += ["\n## Top level\n", table(["key", "type", "default", "meaning"], rows)]
    for item in dataclasses.fields(top):
        if dataclasses.is_dataclass(hints[item.name]):
            out.append(_section(item.name, hints[item.name]))
    return "\n".join(out)


def _section(name: str, cls: type) -> str:
    from cnnlab.options import type_name

    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    rows = []
    for item in dataclasses.fields(cls):
        if item.name == "options":  # a component's own options: its entry in the tables below
            continue
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
        rows.append([code(f"{name}.{item.name}"), cell(type_name(hints[item.name])), shown(default),
                     meaning(comments, item.name, cls)])
    intro = inspect.getdoc(cls) if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") else ""
    more = {"model": "The options of each model (`model.filters`, ...) are listed under [Models](#models).",
            "optim": "The options of each optimizer (`optim.betas`, ...) are under [Optimizers](#optimizers).",
            "schedule": "The options of each schedule (`schedule.step_size`, ...) are under "
                        "[Schedules](#schedules)."}.get(name, "")
    parts = [f"\n## `{name}`\n"] + [p + "\n" for p in (intro, more) if p]
    return "\n".join(parts) + "\n" + table(["key", "type", "default", "meaning"], rows)


def _options(section: str, options: dict[str, Any]) -> str:
    from cnnlab.options import type_name

    if not options:
        return "No options.\n"
    rows = [[code(f"{section}.{o.name}"), cell(type_name(o.annotation)), shown(o.default)] for o in options.values()]
    return table(["key", "type", "default"], rows)


def _grouped(registry: Any, key: Callable[[Any], Any]) -> Iterator[tuple[list[str], Any]]:
    """Entries that share a builder (resnet20 ... resnet110) under one heading."""
    groups: dict[Any, list[str]] = {}
    for name in registry.names():
        groups.setdefault(key(registry.get(name)), []).append(name)
    for names in groups.values():
        yield names, registry.get(names[0])


def models() -> str:
    from cnnlab.models import MODELS

    out = []
    for names, info in _grouped(MODELS, lambda info: info.builder):
        title = ", ".join(code(n) for n in names)
        lines = [f"### {title}\n"]
        for name in names:
            entry = MODELS.get(name)
            size = "x".join(map(str, entry.input_size))
            lines.append(f"- {code(name)}: {cell(entry.description)} (input {size}"
                         + (f"; {cell(entry.paper)}" if entry.paper else "") + ")")
        out.append("\n".join(lines) + "\n\n" + _options("model", info.options))
    providers = ", ".join(code(f"{p}<name>") for p in MODELS.providers())
    out.append(f"Also any name of the form {providers}: a torchvision classifier (`tv:`) or a timm model "
               "(`timm:`, the optional `timm` extra), with that library's own options.\n")
    return "\n".join(out)


def optimizers() -> str:
    from cnnlab.optim import OPTIMIZERS

    out = []
    for name in OPTIMIZERS.names():
        info = OPTIMIZERS.get(name)
        head = (f"### `{name}`\n\n{cell(info.description)}. Default `optim.lr` {info.default_lr:g}, "
                f"`optim.weight_decay` {info.default_weight_decay:g}" + (f"; {cell(info.paper)}" if info.paper else "")
                + ".\n")
        out.append(head + "\n" + _options("optim", info.options))
    return "\n".join(out)


def schedules() -> str:
    from cnnlab.optim import SCHEDULES

    out = []
    for name in SCHEDULES.names():
        info = SCHEDULES.get(name)
        note = " It reads the validation history (reduce on plateau)." if info.needs_history else ""
        out.append(f"### `{name}`\n\n{cell(info.description)}.{note}\n\n" + _options("schedule", info.options))
    return "\n".join(out)


def datasets() -> str:
    from cnnlab.data import DATASETS

    rows = []
    for name in DATASETS.names():
        info = DATASETS.get(name)
        shape = "x".join(str(s) if s else "*" for s in info.shape)
        augment = ", ".join(f"{k}={shown(v).strip('`')}" for k, v in info.augment.items()) or "none"
        rows.append([code(name), shape, str(info.num_classes or "any"), cell(info.description),
                     cell(augment), cell(info.how_to_get)])
    return table(["`data=`", "shape", "classes", "what", "standard augmentation", "how to get it"], rows)


# ------------------------------------------------------------------------------------------ commands
def commands() -> str:
    from cnnlab.cli import build_parser

    parser = build_parser()
    out = [_usage(parser, "cnnlab")]
    for path, sub in _subcommands(parser, "cnnlab"):
        out.append(_command(path, sub))
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                sub.help_text = helps.get(name) or ""  # type: ignore[attr-defined]
                yield f"{path} {name}", sub
                yield from _subcommands(sub, f"{path} {name}")


def _usage(parser: argparse.ArgumentParser, path: str) -> str:
    usage = " ".join(parser.format_usage().split())
    return f"```\n{usage}\n```\n"


def _command(path: str, parser: argparse.ArgumentParser) -> str:
    depth = path.count(" ")
    heading = "#" * min(depth + 1, 4)
    text = [f"{heading} `{path}`\n"]
    about = parser.description or getattr(parser, "help_text", "")
    if about:
        text.append(cell(about) + "\n")
    text.append(_usage(parser, path))
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(code(o) for o in action.option_strings) or code(action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            names += " " + cell(action.metavar or action.dest.upper())
        default = "" if action.default in (None, argparse.SUPPRESS, False) or action.nargs == 0 else \
            shown(action.default)
        rows.append([names, cell((action.help or "") % {"default": action.default} if action.help else ""), default])
    if rows:
        text.append(table(["argument", "meaning", "default"], rows))
    return "\n".join(text)


# ------------------------------------------------------------------------------------------ run.json
def run_json() -> str:
    from cnnlab.options import type_name
    from cnnlab.runs.record import SCHEMA, RunRecord
    from cnnlab.train.status import Status

    hints = typing.get_type_hints(RunRecord)
    comments = field_comments(RunRecord)
    rows = [[code(f.name), cell(type_name(hints[f.name])), meaning(comments, f.name, RunRecord)]
            for f in dataclasses.fields(RunRecord) if f.name != "extra"]
    statuses = ", ".join(code(s.value) for s in Status)
    return (f"Schema `{SCHEMA}`. Keys a newer cnnlab wrote and this one does not know are kept and written back "
            f"unchanged.\n\n" + table(["key", "type", "meaning"], rows) + f"\n`status` is one of {statuses}.\n")


# ------------------------------------------------------------------------------------------ study files
def study_files() -> str:
    """Each shipped study file's opening comment (what it encodes, from which paper, and where it
    deviates), as the file says it: indented lines (commands) become code blocks, `- ` lines lists."""
    out = []
    for path in sorted((ROOT / "studies").glob("*.yaml")):
        comment = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            comment.append(line[2:] if line.startswith("# ") else line[1:])
        out.append(f"## `studies/{path.name}`\n\n" + _comment_markdown(comment))
    return "\n".join(out)


def _comment_markdown(lines: list[str]) -> str:
    out: list[str] = []
    code = listing = False
    for line in lines:
        is_code = line.startswith("  ") and line.strip().startswith("cnnlab")
        if is_code != code:
            out += ["", "```bash"] if is_code else ["```", ""]
            code = is_code
        if line.startswith("- ") and not listing and not code:
            out.append("")  # Markdown needs a blank line before a list
        listing = line.startswith("- ") or (listing and line.startswith("  "))
        out.append(line.strip() if is_code else html.escape(line, quote=False))
    if code:
        out.append("```")
    return "\n".join(out) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "config-keys": config_keys, "models": models, "optimizers": optimizers, "schedules": schedules,
    "datasets": datasets, "commands": commands, "run-json": run_json, "study-files": study_files,
}


if __name__ == "__main__":  # python tools/docs_reference.py NAME: print one generated table
    import sys

    print(GENERATORS[sys.argv[1]]())
