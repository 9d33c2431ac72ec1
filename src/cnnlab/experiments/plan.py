"""A study's plan.json, checked on read like run.json: damaged or edited, it is one ConfigError, never a count.

plan.json lists the study's runs (name, variation, seed, grid point) and what its table judges by (metric,
mode, reference, compare_to). `cnnlab study table`, `study plot`, `report` and `study run` read it; a table that
counted an edited plan (a run's seed changed, a run relabelled) would report seeds or rows that never ran. So
`seal` writes a sha256 of the plan's content into it (`digest`), and `read_plan` refuses a plan that
- is not JSON, not an object, or empty (a truncated or zeroed file),
- holds a field of the wrong type (`runs` not a list of {name, variation, seed, grid}, a name that is no plain
  folder name),
- lists one run name twice, or one variation, grid point and seed twice (two "seed 0" runs of a row),
- or (plans written since the digest) whose content no longer matches its digest: changed after cnnlab wrote it.
A plan written before the digest is checked by the rest. The fix is always the same: restore the file, or delete
it and run `cnnlab study run` on the study file again, which plans the study anew and reuses its finished runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CnnlabError, ConfigError
from ..io import atomic_write_json, atomic_write_text, check_name

if TYPE_CHECKING:  # annotations only: experiments/study.py imports this module
    from .study import RunSpec, Study

FILE_NAME = "plan.json"
MAX_BYTES = 64 << 20  # a plan of a million runs is ~100 MB less than this; a bigger file is not a plan
FIELDS: dict[str, type] = {"name": str, "variation": str, "seed": int, "grid": dict}  # of each entry of `runs`
NOTHING = type(None)
TOP: dict[str, type | tuple[type, ...]] = {  # the plan's own fields, and what each holds
    "runs": list, "name": (str, NOTHING), "metric": (str, NOTHING), "mode": (str, NOTHING),
    "compare_to": (dict, NOTHING), "greedy": (dict, NOTHING), "description": (str, NOTHING),
    "sequential": (dict, NOTHING), "implicit_baseline": bool}


def digest_of(meta: dict[str, Any]) -> str:
    """The sha256 of a plan's content (everything but `digest`), keys sorted."""
    content = {key: value for key, value in meta.items() if key != "digest"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def seal(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` with its digest, as plan.json is written."""
    return {**meta, "digest": digest_of(meta)}


def read_plan(directory: Path) -> dict[str, Any]:
    """The study's plan.json, checked (see the module's docstring): a ConfigError naming the file, what is
    wrong and what to do, for a plan that is missing, damaged or edited."""
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        raise ConfigError(f"'{directory}' is not a study directory (no plan.json); run `cnnlab study run FILE` first")
    fix = ("Restore it from a copy, or delete it and run `cnnlab study run STUDY.yaml --dir "
           f"{directory}` again: the plan is written anew from the study file (study.yaml here is its copy) and "
           "the finished runs are reused")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than a plan holds")
        meta = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{path}: the study's plan is damaged ({str(exc)[:160] or 'empty'}). {fix}") from None
    problem = plan_problem(meta) or seeds_problem(Path(directory), meta)
    if problem is not None:
        raise ConfigError(f"{path}: the study's plan {problem}. {fix}")
    return meta


def seeds_problem(directory: Path, meta: dict[str, Any]) -> str | None:
    """A plan entry whose run says it trained another seed (another study's plan.json, sealed and whole, copied
    in): what is wrong, or None. Runs not there yet, or whose run.json cannot be read, are not compared."""
    for run in meta["runs"]:
        try:
            seed = json.loads((directory / run["name"] / "run.json").read_text()).get("seed")
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(seed, int) and not isinstance(seed, bool) and seed != run["seed"]:
            return (f"says run '{run['name']}' is seed {run['seed']}, but that run trained seed {seed}: it is not "
                    "the plan of the runs in this folder")
    return None


def plan_problem(meta: Any) -> str | None:
    """What is wrong with a parsed plan, in words that follow 'the study's plan', or None."""
    if not isinstance(meta, dict):
        return f"is not a JSON object (it holds {type(meta).__name__})"
    for key, kinds in TOP.items():
        if (key in meta or key == "runs") and not isinstance(meta.get(key), kinds):
            return f"is damaged: field '{key}' is {_shown(meta.get(key))}"
    if "digest" in meta and meta["digest"] != digest_of(meta):
        return ("was changed after cnnlab wrote it (its content no longer matches its digest), so its runs, seeds "
                "or rows may not be the ones that ran")
    names, rows = set(), set()
    for index, run in enumerate(meta["runs"]):
        wrong = [key for key, kind in FIELDS.items() if not isinstance(run, dict) or not isinstance(run.get(key), kind)
                 or (kind is int and isinstance(run.get(key), bool))]
        if wrong:
            return f"is damaged: run {index + 1} has no valid '{wrong[0]}'"
        try:
            check_name(run["name"], "run name")
        except CnnlabError:
            return f"is damaged: run {index + 1}'s name {run['name']!r} is not a plain folder name"
        row = (run["variation"], json.dumps(run["grid"], sort_keys=True, default=str), run["seed"])
        if run["name"] in names or row in rows:
            what = f"run '{run['name']}'" if run["name"] in names else \
                f"variation '{run['variation']}' with seed {run['seed']}"
            return f"lists {what} twice (edited by hand?)"
        names.add(run["name"])
        rows.add(row)
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------------------ the study's plan
def write_plan(study: Study, directory: Path) -> None:
    if study.path is not None:
        atomic_write_text(directory / "study.yaml", study.path.read_text())
    plan = [{"name": s.name, "variation": s.variation, "seed": s.seed, "grid": s.grid, **({"added": True} if s.added
             else {})} for s in study.runs]
    meta = {"name": study.name, "description": study.description, "metric": study.metric, "mode": study.mode,
            "protocol": study.protocol, "reference": study.reference, "compare_to": study.compare_to,
            "greedy": {"require": study.require, "keep": study.keep, "seeds": len(study.seeds)}, "runs": plan,
            **({"sequential": study.sequential} if study.sequential else {}),
            **({"implicit_baseline": True} if study.implicit_baseline else {})}
    atomic_write_json(directory / "plan.json", seal(meta))  # read back by experiments/plan.py, which checks it


def adopt_added_runs(study: Study, directory: Path) -> None:
    """Keep in `study.runs` the seeds an earlier `--until-decided` added (plan.json marks them), for the rows the
    study still has, so running or tabulating the study again neither forgets nor repeats them."""
    path = Path(directory) / "plan.json"
    if not path.is_file():
        return
    known = {spec.name for spec in study.runs}
    firsts = {(spec.variation, json.dumps(spec.grid, sort_keys=True)): spec for spec in reversed(study.runs)}
    for meta in read_plan(directory).get("runs", []):
        first = firsts.get((meta.get("variation"), json.dumps(meta.get("grid", {}), sort_keys=True)))
        if meta.get("added") and first is not None and meta["name"] not in known:
            spec = first.with_seed(int(meta["seed"]))
            if spec.name == meta["name"]:
                study.runs.append(spec)
                known.add(spec.name)


def adopt_design(study: Study, directory: Path) -> None:
    """Keep the sequential design an earlier `--until-decided` fixed (its verdicts keep alpha only under the design
    chosen before its first look): a plain run of the study keeps it, another --max-seeds is refused. A design
    chosen for a study that already has a plan is marked: its first seeds may have been tabulated at the full alpha."""
    if not (Path(directory) / "plan.json").is_file():
        return
    earlier = read_plan(directory).get("sequential")
    if study.sequential is None:
        study.sequential = earlier
    elif earlier is None:
        study.sequential = {**study.sequential, "chosen_after_a_plain_run": True}
    elif (earlier.get("max_seeds"), earlier.get("boundary")) != (study.sequential["max_seeds"],
                                                                 study.sequential["boundary"]):
        raise ConfigError(
            f"'{directory}' added seeds until decided with --max-seeds {earlier.get('max_seeds')} and the "
            f"{earlier.get('boundary')} boundary; its verdicts keep their alpha only under the design chosen before "
            f"the first look: run it with --max-seeds {earlier.get('max_seeds')} --boundary "
            f"{earlier.get('boundary')}, or into a new --dir")
    else:
        study.sequential = earlier


def names_in(specs: Iterable[RunSpec]) -> list[str]:
    return [s.name for s in specs]
