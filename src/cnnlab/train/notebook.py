"""Training progress in a Jupyter notebook: one output that is redrawn in place, never a stream of lines.

A terminal gets rich's progress bar (callbacks.Console); a notebook's output is not a terminal, and a bar
written there as text would add a line per refresh. Here the display is one IPython display (its
`display_id`) that `update_display` replaces: the epochs so far as a table, the epoch in progress as a bar
with its running loss, accuracy and images per second, and at the end the run's status. It carries the
same content as plain text for front ends without HTML (and for a notebook saved and read as text).
Redraws are at most one per `min_seconds`, on top of the trainer's own progress period (0.5 s).
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

from .callbacks import Callback, loss_text
from .hooks import TrainerView


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell with a kernel), where display works."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookProgress(Callback):
    """A live progress display for `cnnlab.train` in a notebook; the api adds it when it runs in a kernel.
    It silences the console's epoch lines (the same rows are in its table)."""

    def __init__(self, min_seconds: float = 0.25) -> None:
        self.min_seconds = min_seconds
        self.rows: list[dict[str, Any]] = []
        self.live: dict[str, Any] | None = None
        self.status: str | None = None
        self.epochs = 0
        self.handle: Any = None
        self._drawn = 0.0

    # ------------------------------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: TrainerView) -> None:
        from IPython.display import display

        # (the epoch lines are log records, shown in a notebook only when asked: cnnlab.show_messages)
        self.epochs = trainer.epochs
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        self.live = {"epoch": epoch + 1, "step": 0, "steps": trainer.steps_per_epoch, "loss": None, "acc": None,
                     "speed": None}
        self._draw(force=True)

    def on_progress(self, trainer: TrainerView, progress: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(step=progress["step_in_epoch"], loss=progress["loss"], acc=progress["acc"],
                             speed=progress["images_per_second"])
            self._draw()

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        self.rows.append({k: row.get(k) for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                                  "train_seconds", "images_per_second")})
        self.live = None
        self._draw(force=True)

    def on_fit_end(self, trainer: TrainerView, result: Any) -> None:
        """`result`: the run's FitResult (status and reason), as every callback gets it."""
        word = getattr(result.status, "value", result.status)
        self.status = f"{word}: {result.reason}" if result.reason else str(word)
        self._draw(force=True)

    # ------------------------------------------------------------------------------------- drawing
    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.handle is None or (not force and now - self._drawn < self.min_seconds):
            return
        self._drawn = now
        self.handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def _live_text(self) -> str:
        live = self.live or {}
        parts = [f"epoch {live['epoch']}/{self.epochs}", f"step {live['step']}/{live['steps']}"]
        if live.get("loss") is not None:
            parts += [f"loss {loss_text(live['loss'])}", f"acc {100 * live['acc']:.2f}%",
                      f"{live['speed']:,.0f} img/s"]
        return "  ".join(parts)

    def text(self) -> str:
        """The display as plain text: the console's epoch lines, the epoch in progress, the status."""
        lines = [epoch_line(row, self.epochs) for row in self.rows]
        if self.live is not None:
            lines.append(self._live_text())
        if self.status:
            lines.append(self.status)
        return "\n".join(lines) or "starting"

    def html(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("epoch", "train loss", "train acc", "val loss", "val acc",
                                                 "seconds", "img/s"))
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in epoch_cells(row, self.epochs)) + "</tr>"
                       for row in self.rows)
        live = ""
        if self.live is not None:
            value, total = self.live["step"], max(self.live["steps"], 1)
            live = (f'<div><progress value="{value}" max="{total}" style="width:40%"></progress> '
                    f"<code>{html.escape(self._live_text())}</code></div>")
        status = f"<div><b>{html.escape(self.status)}</b></div>" if self.status else ""
        return (f'<div class="cnnlab-progress"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                f"{live}{status}</div>")


def epoch_cells(row: dict[str, Any], epochs: int) -> list[str]:
    def percent(value: Any) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    return [f"{row['epoch']}/{epochs}", loss_text(row["train_loss"]), percent(row["train_acc"]),
            "-" if row.get("val_loss") is None else loss_text(row["val_loss"]), percent(row.get("val_acc")),
            f"{row['train_seconds']:.1f}", f"{row['images_per_second']:,.0f}"]


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """One epoch as the console prints it."""
    cells = epoch_cells(row, epochs)
    line = f"epoch {cells[0]}  train loss {cells[1]}  acc {cells[2]}"
    if row.get("val_loss") is not None:
        line += f"  val loss {cells[3]}  acc {cells[4]}"
    return line + f"  {cells[5]}s  {cells[6]} img/s"
