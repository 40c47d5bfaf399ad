"""Progress of fine-tuning, shown on stderr (never stdout, so --json output stays one document)."""

from __future__ import annotations

import sys
from typing import Protocol


class ProgressSink(Protocol):
    """What the training loop reports to; the CLI passes one, library callers may pass None."""

    def start(self, title: str, epochs: int, steps_per_epoch: int) -> None: ...

    def step(self, epoch: int, step: int, loss: float | None) -> None: ...

    def epoch_end(self, epoch: int, logs: dict) -> None: ...

    def stop(self) -> None: ...

    def note(self, text: str) -> None: ...


class StderrProgress:
    """A rich progress bar on a terminal; one line per epoch when stderr is a file or a pipe."""

    def __init__(self, stream=None):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self._progress = None
        self._task = None
        self.title = ""
        self.epochs = 0

    def note(self, text: str) -> None:
        """One line of information (e.g. the loss chosen) before training starts."""
        self.console.print(text, markup=False)

    def start(self, title: str, epochs: int, steps_per_epoch: int) -> None:
        self.title, self.epochs = title, epochs
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                  console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task(title, total=epochs * steps_per_epoch, loss="-")

    def step(self, epoch: int, step: int, loss: float | None) -> None:
        if self._progress is not None:
            shown = "-" if loss is None else f"{loss:.4f}"
            self._progress.update(self._task, advance=1, loss=shown,
                                  description=f"{self.title} epoch {epoch + 1}/{self.epochs}")

    def epoch_end(self, epoch: int, logs: dict) -> None:
        if self._progress is None:
            loss = logs.get("loss")
            shown = "" if loss is None else f" loss {loss:.4f}"
            self.console.print(f"{self.title}: epoch {epoch + 1}/{self.epochs}{shown}", markup=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def keras_callback(sink: ProgressSink):
    """A tf_keras callback that forwards batches and epochs to ``sink``."""
    import tf_keras

    from edgepack.util.termination import raise_if_terminated

    class _Forward(tf_keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            raise_if_terminated()
            loss = (logs or {}).get("loss")
            sink.step(self.epoch, batch + 1, None if loss is None else float(loss))

        def on_epoch_end(self, epoch, logs=None):
            raise_if_terminated()
            sink.epoch_end(epoch, {k: float(v) for k, v in (logs or {}).items()})

    return _Forward()
