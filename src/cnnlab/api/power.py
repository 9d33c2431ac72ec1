"""`cnnlab study power`: the false-positive rate and the power of the study you plan, simulated through the verdict
code itself (experiments/calibration.py), before a single run."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .studies import verdict_options


@dataclass
class PowerTable:
    """`cnnlab study power`: what the verdicts of one kind of study say, simulated (experiments/calibration.py)."""

    setting: Any  # calibration.Setting (at effect 0)
    outcomes: list[Any]  # calibration.Outcome per effect, the null first

    @property
    def headers(self) -> list[str]:
        return ["effect", "better", "worse", "equivalent", "within noise", "1 seed", "seeds per row"]

    @property
    def rows(self) -> list[list[str]]:
        return [[f"{100 * o.setting.effect:+g}", *(f"{100 * o.words[w]:.1f}%" for w in
                 ("better", "worse", "equivalent", "within noise", "1 seed")), f"{o.seeds_used:.1f}"]
                for o in self.outcomes]

    @property
    def notes(self) -> list[str]:
        null = self.outcomes[0]
        alpha = self.setting.alpha
        return [f"under the null (effect +0: an A/A study) a row was called better or worse {100 * null.claims:.2f}% "
                f"of the time and a table had such a row {100 * null.any_claim:.2f}% of the time: at most "
                f"{100 * alpha:g}% promised (≤ {100 * null.bound(alpha):.2f}% with three Monte-Carlo errors); the "
                "other rows give the power: how often a true effect of that many points is called better"]

    def _repr_html_(self) -> str:
        from ..html import table

        return table(self.headers, self.rows, self.setting.describe(), self.notes)


def study_power(rows: int = 3, seeds: int = 3, max_seeds: int | None = None, seed_sd: float = 2.0,
                effects: Sequence[float] = (1.0, 2.0, 5.0), studies: int = 10_000, test_images: int = 10_000,
                accuracy: float = 80.0, boundary: str = "obrien-fleming", alpha: float = 0.05,
                min_effect: float = 0.5) -> PowerTable:
    """Simulate `studies` studies of `rows` rows against one reference (`seeds` seeds each, added until decided up
    to `max_seeds` when given) through the verdict code itself, at the null and at each of `effects` (points of
    accuracy), and count the words: the false-positive rate and the power a study of that kind has. `seed_sd`:
    the spread of a run's accuracy over seeds (points; a study's own std column estimates it); `accuracy`: the
    reference's, in percent."""
    from ..experiments.calibration import Setting, simulate

    options = verdict_options(alpha, min_effect)
    checks = ((1 <= rows <= 100, "--rows", "between 1 and 100"), (1 <= seeds <= 100, "--seeds", "between 1 and 100"),
              (max_seeds is None or 2 <= max_seeds <= 100, "--max-seeds", "between 2 and 100"),
              (0 < seed_sd <= 50, "--seed-sd", "in points, above 0 and at most 50"),
              (100 <= studies <= 1_000_000, "--studies", "between 100 and 1,000,000"),
              (1 <= test_images <= 10_000_000, "--test-images", "between 1 and 10,000,000"),
              (0 < accuracy < 100, "--accuracy", "a percentage between 0 and 100"),
              (all(-100 < e < 100 for e in effects), "--effects", "points between -100 and 100"),
              (boundary in ("obrien-fleming", "pocock"), "--boundary", "obrien-fleming or pocock"))
    for ok, name, what in checks:
        if not ok:
            raise ConfigError(f"{name} must be {what}")
    setting = Setting(rows=rows, seeds=seeds, max_seeds=max_seeds, seed_sd=seed_sd / 100, studies=studies,
                      test_images=test_images, accuracy=accuracy / 100, boundary=boundary, alpha=options.alpha,
                      min_effect=options.min_effect)
    outcomes = [simulate(dataclasses.replace(setting, effect=effect / 100)) for effect in (0.0, *effects)]
    return PowerTable(setting, outcomes)
