"""A run's epoch history as a table (`TrainResult.history`): one row per epoch, as metrics.csv has it.

Still the list of dicts it always was (`history[-1]["val_acc"]`, `len(history)`), and also a table: its
`columns`, one `column(name)`, `to_pandas()` where pandas is installed, and a table in a notebook
(`_repr_html_`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import html
from ..errors import ConfigError

# how a notebook shows each column: accuracies as percentages, losses and rates with four digits
PERCENT = ("acc", "top5")


class History(list[dict[str, Any]]):
    """The rows of metrics.csv, one per epoch: epoch, step, lr, train/val loss and accuracy, seconds."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(dict(row) for row in rows)

    @property
    def columns(self) -> list[str]:
        """Every key any row has, in the order they first appear (epoch, step, lr, train_loss, ...)."""
        return list(dict.fromkeys(key for row in self for key in row))

    def column(self, name: str) -> list[Any]:
        """One column's values, epoch by epoch (None where a row has none, e.g. val_acc without validation)."""
        if name not in self.columns:
            raise ConfigError(f"the history has no column '{name}'; its columns: {', '.join(self.columns)}")
        return [row.get(name) for row in self]

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per epoch, indexed by epoch."""
        try:
            import pandas
        except ImportError:
            raise ConfigError("History.to_pandas needs pandas, which is not installed: `pip install pandas` (or "
                              "`pip install 'cnnlab[notebook]'`); history.columns and history.column(name) need "
                              "nothing") from None
        frame = pandas.DataFrame(list(self), columns=self.columns)
        return frame.set_index("epoch") if "epoch" in frame.columns else frame

    def _repr_html_(self) -> str:
        return html.table(self.columns, [[_cell(name, row.get(name)) for name in self.columns] for row in self],
                          f"history: {len(self)} epoch{'' if len(self) == 1 else 's'}")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if name.endswith(PERCENT):
            return f"{100 * value:.2f}%"
        return f"{value:.4g}"
    return str(value)
