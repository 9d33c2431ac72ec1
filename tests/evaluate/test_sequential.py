"""The group-sequential paired t test behind `--until-decided` (evaluate/sequential.py), worked through by hand with
scipy on small cases: the statistic per look, the repeated p-value, the repeated confidence interval, and a study
table that reads the design from its plan."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnnlab.evaluate import stats
from cnnlab.evaluate.sequential import Design, null_maxima


def test_a_design_refuses_what_it_cannot_be() -> None:
    with pytest.raises(ValueError, match="boundary must be one of obrien-fleming, pocock"):
        Design(5, "bonferroni")
    with pytest.raises(ValueError, match="2 <= first look <= max seeds"):
        Design(1)
    assert list(Design(5).looks) == [2, 3, 4, 5]
    assert Design(5, "pocock").describe(0.1) == ("group-sequential paired t (Pocock boundary over looks at 2-5 seeds, "
                                                 "alpha 0.1 spent over all of them)")
    assert Design(7).describe(0.05).startswith("group-sequential paired t (O'Brien-Fleming boundary over looks at 2-7")


def test_the_repeated_p_value_is_the_null_share_of_larger_maxima_and_falls_as_evidence_grows() -> None:
    design = Design(4)
    null = null_maxima(design)
    for value in (0.5, 1.7, 2.5, 4.0):
        expected = (1 + np.count_nonzero(null >= value)) / (1 + len(null))
        assert design.p_value(np.array([value]))[0] == pytest.approx(expected)
    p = design.p_value(np.array([0.0, 1.0, 2.0, 3.0, np.nan]))
    assert p[0] == 1.0 and np.all(np.diff(p[:4]) < 0) and math.isnan(p[4])


def test_paired_arrays_with_a_design_takes_the_largest_statistic_over_the_looks_so_far() -> None:
    # differences over four seeds, looked at after 2, 3 and 4 of them
    design = Design(6)
    differences = np.array([0.03, 0.035, 0.02, -0.01])
    found = stats.paired_arrays(differences, 0.05, design)
    largest = 0.0
    for n in (2, 3, 4):
        p = scipy_stats.ttest_1samp(differences[:n], 0.0).pvalue  # the look's plain paired t test
        z = scipy_stats.norm.isf(p / 2)
        largest = max(largest, z * (n / 6) ** 0.5)  # O'Brien-Fleming: Z * t^(1/2)
    assert float(found.p_value) == pytest.approx(float(design.p_value(np.array([largest]))[0]))
    # the fourth seed weakened the evidence: the repeated p-value keeps the earlier look's (a row that crossed
    # at a look stays crossed), and is above the plain t test's at the last look (the price of looking)
    last = scipy_stats.ttest_1samp(differences, 0.0).pvalue
    assert float(found.p_value) > last
    # the repeated confidence interval at the last look: the t interval at the boundary's nominal level there
    level = float(design.nominal_level(np.array(4), 0.05))
    half = scipy_stats.t.ppf(1 - level / 2, 3) * scipy_stats.sem(differences)
    assert (float(found.low), float(found.high)) == pytest.approx((differences.mean() - half,
                                                                    differences.mean() + half))
    plain = stats.paired_arrays(differences, 0.05)
    assert found.low < plain.low and found.high > plain.high  # wider than the fixed 95% interval


def test_pocock_spends_alpha_evenly_and_obrien_fleming_saves_it_for_the_end() -> None:
    seeds = np.arange(2, 11)
    obf, pocock = Design(10).nominal_level(seeds, 0.05), Design(10, "pocock").nominal_level(seeds, 0.05)
    assert np.allclose(pocock, pocock[0]) and 0.005 < pocock[0] < 0.05
    assert obf[0] < 1e-3 and obf[-1] > pocock[-1] and np.all(np.diff(obf) > 0)


def test_a_comparison_says_which_test_it_is() -> None:
    row, reference = [0.80, 0.82, 0.81, 0.84], [0.78, 0.80, 0.80, 0.80]
    assert stats.paired_seeds(row, reference).method == "paired t (4 seeds)"
    sequential = stats.paired_seeds(row, reference, design=Design(5))
    assert sequential.method == "group-sequential t (4 seeds)"
    assert sequential.p_value > stats.paired_seeds(row, reference).p_value


def _plan(directory: Path, sequential: dict | None, seeds: int) -> None:
    runs = [{"name": f"{v}__seed{s}", "variation": v, "seed": s, "grid": {}} for v in ("baseline", "row")
            for s in range(seeds)]
    plan = {"name": "s", "metric": "test_acc", "mode": "one_change", "runs": runs,
            **({"sequential": sequential} if sequential else {})}
    directory.mkdir(exist_ok=True)
    (directory / "plan.json").write_text(json.dumps(plan))


def test_a_study_table_reads_its_design_from_the_plan_and_says_so(tmp_path: Path) -> None:
    from cnnlab.experiments.table import build_table
    from tests.experiments.test_table_parts import a_run

    accuracies = {"baseline": [0.80, 0.81, 0.79, 0.80, 0.82, 0.80, 0.81],
                  "row": [0.84, 0.86, 0.83, 0.85, 0.84, 0.86, 0.85]}
    for variation, values in accuracies.items():
        for seed, acc in enumerate(values):
            a_run(tmp_path, f"{variation}__seed{seed}", test={"acc": acc, "count": 10_000})
    _plan(tmp_path, None, 3)
    table, notes = build_table(tmp_path)
    assert table[1]["method"] == "paired t (3 seeds)" and notes[0].startswith(
        "verdict: Δ against the row in 'vs' (paired t over the seeds both rows finished")
    _plan(tmp_path, {"max_seeds": 5, "boundary": "obrien-fleming", "first_look": 2}, 3)
    table, notes = build_table(tmp_path)
    assert table[1]["method"] == "group-sequential t (3 seeds)"
    assert "group-sequential paired t (O'Brien-Fleming boundary over looks at 2-5 seeds" in notes[0]
    # seven seeds where the design planned five (two added by hand): the first five are its test, and it says so
    _plan(tmp_path, {"max_seeds": 5, "boundary": "obrien-fleming", "chosen_after_a_plain_run": True}, 7)
    table, notes = build_table(tmp_path)
    assert table[1]["method"] == "group-sequential t (5 seeds)"
    assert any("judged on their first 5" in note for note in notes)
    assert any("chosen after a plain run" in note for note in notes)
    (tmp_path / "plan.json").write_text(json.dumps({**json.loads((tmp_path / "plan.json").read_text()),
                                                    "sequential": {"boundary": "pocock"}}))
    from cnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="plan.json's sequential design is damaged"):
        build_table(tmp_path)


def test_until_decided_refuses_another_max_seeds_on_a_study_that_has_a_design(tmp_path: Path) -> None:
    from cnnlab.errors import ConfigError
    from cnnlab.experiments.study import Study, adopt_design

    _plan(tmp_path, {"max_seeds": 5, "boundary": "obrien-fleming", "first_look": 2}, 1)
    plain = Study("s", None, "", [])
    adopt_design(plain, tmp_path)
    assert plain.sequential == {"max_seeds": 5, "boundary": "obrien-fleming", "first_look": 2}  # kept
    same = Study("s", None, "", [], sequential={"max_seeds": 5, "boundary": "obrien-fleming", "first_look": 2})
    adopt_design(same, tmp_path)
    other = Study("s", None, "", [], sequential={"max_seeds": 10, "boundary": "obrien-fleming", "first_look": 2})
    with pytest.raises(ConfigError, match="run it with --max-seeds 5 --boundary obrien-fleming, or into a new --dir"):
        adopt_design(other, tmp_path)
    _plan(tmp_path, None, 1)
    late = Study("s", None, "", [], sequential={"max_seeds": 5, "boundary": "pocock", "first_look": 2})
    adopt_design(late, tmp_path)
    assert late.sequential["chosen_after_a_plain_run"] is True


def test_the_critical_value_is_the_smallest_the_repeated_p_value_allows() -> None:
    design = Design(3)
    null = null_maxima(design)
    for alpha in (0.05, 0.01, 0.2):
        critical = design.critical(alpha)
        below = null[np.searchsorted(null, critical) - 1]  # the simulated value just under it
        assert design.p_value(np.array([critical]))[0] <= alpha < design.p_value(np.array([below]))[0]
    assert Design(2).looks == range(2, 3)  # two seeds at most: one look, at two


def test_the_scaled_statistic_follows_the_boundary_shape() -> None:
    z, seeds = np.array([2.0, 2.0, 2.0]), np.array([2, 3, 4])
    assert np.allclose(Design(4, "pocock").scaled(z, seeds), z)  # Pocock: the boundary is constant
    assert np.allclose(Design(4).scaled(z, seeds), z * np.sqrt(seeds / 4))  # O'Brien-Fleming: Z * t^(1/2)
    from cnnlab.evaluate.sequential import normal_scale

    p = np.array([1.0, 0.05, 1e-300])
    assert np.allclose(normal_scale(p), scipy_stats.norm.isf(p / 2)) and normal_scale(np.array([0.0]))[0] == np.inf


def test_rows_with_fewer_seeds_than_the_table_is_wide_are_judged_on_their_own_seeds() -> None:
    """A row whose later seeds have not finished (NaN) has its Δ, interval and p from the seeds it has, exactly as
    the same row alone; a one-seed row has its Δ and no interval; a row with none has nothing (mutation run 5:
    a missing seed counted as +1 point survived every test)."""
    rows = np.array([[0.05, -0.01, 0.02, np.nan], [0.03, 0.035, 0.02, -0.01], [0.04, np.nan, np.nan, np.nan],
                     [np.nan] * 4])
    found = stats.paired_arrays(rows, 0.05)
    alone = stats.paired_arrays(np.array([0.05, -0.01, 0.02]), 0.05)
    assert list(found.seeds) == [3, 4, 1, 0]
    assert float(found.delta[0]) == pytest.approx(0.02) == pytest.approx(float(alone.delta))
    assert (float(found.low[0]), float(found.high[0]), float(found.p_value[0])) == pytest.approx(
        (float(alone.low), float(alone.high), float(alone.p_value)))
    assert float(found.p_value[0]) == pytest.approx(scipy_stats.ttest_1samp([0.05, -0.01, 0.02], 0.0).pvalue)
    assert float(found.delta[2]) == pytest.approx(0.04) and np.isnan(found.low[2]) and np.isnan(found.p_value[2])
    assert np.isnan(found.delta[3]) and np.isnan(found.low[3]) and np.isnan(found.p_value[3])
    design = Design(6)
    sequential = stats.paired_arrays(rows, 0.05, design)
    assert float(sequential.p_value[0]) == pytest.approx(float(stats.paired_arrays(rows[0, :3], 0.05, design).p_value))
    assert np.isnan(sequential.p_value[2]) and np.isnan(sequential.p_value[3])


def test_the_vectorised_paths_raise_no_numpy_warning(recwarn: pytest.WarningsRecorder) -> None:
    """Empty, one-seed and flat rows are handled, not computed into warnings (run 5's survivors that only made
    numpy warn, on every call of a table)."""
    import warnings

    rows = np.array([[np.nan] * 3, [0.01, np.nan, np.nan], [0.02, 0.02, 0.02], [0.01, 0.03, -0.01]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.paired_arrays(rows, 0.05)
        stats.paired_arrays(rows, 0.05, Design(5))
        stats.holm_array(np.array([0.01, np.nan, 0.04]))


def test_the_repeated_p_value_counts_the_current_look() -> None:
    """The evidence grows to the last look: the repeated p-value is the design's at the largest statistic over
    every look, the last included (run 5: leaving the current look out survived)."""
    design = Design(6)
    differences = np.array([0.01, -0.005, 0.02, 0.03, 0.025])
    largest = max(scipy_stats.norm.isf(scipy_stats.ttest_1samp(differences[:n], 0.0).pvalue / 2) * (n / 6) ** 0.5
                  for n in (2, 3, 4, 5))
    last = scipy_stats.norm.isf(scipy_stats.ttest_1samp(differences, 0.0).pvalue / 2) * (5 / 6) ** 0.5
    assert largest == pytest.approx(last)  # the last look is the strongest here
    found = stats.paired_arrays(differences, 0.05, design)
    assert float(found.p_value) == pytest.approx(float(design.p_value(np.array([largest]))[0]))
    assert float(found.p_value) < 0.5
