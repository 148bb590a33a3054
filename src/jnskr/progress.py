"""Training progress outside the terminal bar: the falling-validation rule, notebook progress,
and a fan-out that lets several `jnskr.training.trainer.Progress` objects watch one run.

Each object here has the trainer's progress methods (start / batch / epoch_end / close).  The
pipeline calls `start` once for the selection run and once more for the refit on all of train
(when `train.refit` is on), so objects count the calls as phases: phase 0 is selection.

    rec = Recommender(cfg).fit(ds, progress=True)      # NotebookProgress in Jupyter, tqdm when installed
    rec = Recommender(cfg).fit(ds)      # "auto": the bar on a terminal or in Jupyter, else LogProgress lines
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings

from jnskr.eta import StopEstimate, phase_text, remaining_text, start_text

log = logging.getLogger("jnskr")

#: the figure the bars, the rule and the trackers read from an evaluation record
SHOWN_METRICS = ("recall@20", "recall@10", "ndcg@20")

PHASES = ("training", "refit")


def shown_metric(valid: dict | None) -> str | None:
    """The metric named in progress lines: recall@20 when the run computes it."""
    if not valid:
        return None
    return next((k for k in SHOWN_METRICS if k in valid), next(iter(sorted(valid)), None))


def falling_message(metric: str, since_epoch: int, layers: list[str] | None = None) -> str:
    """The warning; it names what set the run's values (`Config.layers()`): a preset alone is
    "the preset NAME", a config file over it "the settings of FILE (over preset NAME)".

    >>> falling_message("recall@20", 2, ["preset default", "mine.yaml"])
    'validation recall@20 is falling since epoch 2: the settings of mine.yaml (over preset default) may not suit this data; see `jnskr tune`'
    """
    files = [x for x in layers or [] if not x.startswith(LAYER_WORDS)]
    presets = [x.removeprefix("preset ") for x in layers or [] if x.startswith("preset ")]
    if files:
        over = f" (over preset {presets[0]})" if presets else ""
        return (f"validation {metric} is falling since epoch {since_epoch}: the settings of {' + '.join(files)}{over} "
                "may not suit this data; see `jnskr tune`")
    what = f"the preset {presets[0]}" if presets else "the preset"
    return (f"validation {metric} is falling since epoch {since_epoch}: {what} may not suit this data; "
            "see `jnskr presets` / `jnskr tune`")


#: how `Config.layers()` names the layers that are not files
LAYER_WORDS = ("preset ", "command line", "--set ", "overrides ", "keyword overrides")


class FallingWatch:
    """Warns once when validation keeps falling after the first evaluations: the first evaluation is
    still the best and the `streak` latest evaluations are all below it (a preset whose regularisation
    does not suit the data overfits from the first sweeps on; the selected model is then the first).

    `emit(message)` reports it (default: a warning on the "jnskr" logger); `message` keeps it."""

    watches_validation = True

    def __init__(self, streak: int = 2, emit=None, layers: list[str] | None = None):
        self.streak = streak
        self.emit = emit if emit is not None else log.warning
        self.layers = layers  # the config's layers, named in the message (`tell_layers`)
        self.message: str | None = None
        self.phase = -1
        self.scores: list[tuple[int, float]] = []

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1
        self.scores = []

    def batch(self, epoch: int, loss: float) -> None:
        pass

    def epoch_end(self, record: dict) -> None:
        metric = shown_metric(record.get("valid"))
        if metric is None or self.message is not None:
            return
        self.scores.append((int(record["epoch"]), float(record["valid"][metric])))
        message = check_falling(self.scores, self.streak, metric, self.layers)
        if message is not None:
            self.message = message
            self.emit(message)

    def close(self) -> None:
        pass


def check_falling(scores: list[tuple[int, float]], streak: int = 2, metric: str = "recall@20",
                  layers: list[str] | None = None) -> str | None:
    """The rule on (epoch, validation score) pairs in order: a message when the first evaluation is
    the best so far and the last `streak` evaluations are all below it, else None.

    >>> check_falling([(5, 0.277), (10, 0.25), (15, 0.192)])
    'validation recall@20 is falling since epoch 5: the preset may not suit this data; see `jnskr presets` / `jnskr tune`'
    >>> check_falling([(5, 0.2), (10, 0.25), (15, 0.19)]) is None
    True
    """
    if len(scores) < streak + 1:
        return None
    first_epoch, first = scores[0]
    if any(s > first for _, s in scores[1:]):
        return None
    if all(s < first for _, s in scores[-streak:]):
        return falling_message(metric, first_epoch, layers)
    return None


class FanOut:
    """Several progress objects as one (None entries are skipped)."""

    def __init__(self, *parts):
        self.parts = [p for p in parts if p is not None]
        self.watches_validation = any(getattr(p, "watches_validation", False) for p in self.parts)

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        for p in self.parts:
            p.start(done_epochs, total_epochs, batches_per_epoch)

    def batch(self, epoch: int, loss: float) -> None:
        for p in self.parts:
            p.batch(epoch, loss)

    def epoch_end(self, record: dict) -> None:
        for p in self.parts:
            p.epoch_end(record)

    def close(self) -> None:
        for p in self.parts:
            p.close()


def _fmt_loss(loss: float | None) -> str:
    return "-" if loss is None or not math.isfinite(loss) else f"{loss:.4g}"


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:  # pragma: no cover
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class NotebookProgress:
    """A progress bar for notebooks and plain Python: `tqdm.auto` when tqdm is installed (a widget
    in Jupyter, text elsewhere), else one printed line per evaluation.  The bar counts the epochs
    of the phase up to its expected end (`jnskr.eta`: the early stop if validation does not improve
    again, at most the epoch cap), with the batch within the epoch, the last epoch's loss and
    validation figure, and prints the falling-validation warning of `FallingWatch` where a
    notebook user sees it."""

    watches_validation = True

    def __init__(self, file=None, use_tqdm: bool = True):
        self.file = file
        self.use_tqdm = use_tqdm
        self.bar = None
        self.phase = -1
        self.valid = ""
        self.watch = FallingWatch(emit=self.write)
        self.stop = StopEstimate()

    def write(self, message: str) -> None:
        log.warning(message)
        if self.bar is not None:
            self.bar.write("warning: " + message, file=self.file)
        else:
            print("warning: " + message, file=self.file if self.file is not None else sys.stderr, flush=True)

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1
        self.valid = ""
        self.watch.start(done_epochs, total_epochs, batches_per_epoch)
        self.stop.reset(exact=self.phase > 0)
        self.total_epochs, self.epoch, self.per_epoch = total_epochs, done_epochs, max(1, batches_per_epoch)
        self.first, self.batches = done_epochs, 0
        self.t0 = time.perf_counter()
        self.label = PHASES[min(self.phase, 1)]
        tqdm = None
        if self.use_tqdm:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
        if tqdm is not None:  # counts epochs (not the batches of every epoch as one total)
            self.bar = tqdm(total=self.stop.end(total_epochs) - done_epochs, desc=self._desc(), unit="epoch",
                            file=self.file, leave=True, dynamic_ncols=True)
        else:
            self._print(start_text(self.label, total_epochs, self.stop, done_epochs))

    def _desc(self) -> str:
        return phase_text(self.label, min(self.epoch + 1, self.total_epochs), self.total_epochs, self.stop)

    def _print(self, line: str) -> None:
        print(line, file=self.file if self.file is not None else sys.stderr, flush=True)

    def batch(self, epoch: int, loss: float) -> None:
        if epoch != self.epoch:
            self.epoch, self.batches = epoch, 0
        self.batches += 1
        if self.bar is not None and self.per_epoch > 1:  # the loss shown stays the last epoch's
            self.bar.set_description(f"{self._desc()}, batch {self.batches}/{self.per_epoch}", refresh=False)
            self.bar.update(0)  # redraws at tqdm's own pace

    def epoch_end(self, record: dict) -> None:
        self.epoch = int(record["epoch"])
        self.stop.see(record)
        metric = shown_metric(record.get("valid"))
        if metric is not None:
            self.valid = f", validation {metric} {record['valid'][metric]:.4f}"
        if self.bar is not None:
            self.bar.total = max(self.stop.end(self.total_epochs), self.epoch) - self.first
            self.bar.n = self.epoch - self.first
            self.bar.set_description(self._desc(), refresh=False)
            self.bar.set_postfix_str(f"loss {_fmt_loss(record.get('loss'))}{self.valid}")
        elif metric is not None:
            self._print(f"{phase_text(self.label, self.epoch, self.total_epochs, self.stop)}  loss "
                        f"{_fmt_loss(record.get('loss'))}{self.valid}  ({time.perf_counter() - self.t0:.0f} s)")
        self.watch.epoch_end(record)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LogProgress:
    """Progress as plain lines on the ``jnskr`` logger (INFO), for runs nobody watches on a
    terminal (pipes, nohup, CI; the CLI's choice off a terminal): where the phase starts and how
    it ends (the early-stopping rule, the cap), then a line at most every `every` seconds between
    evaluations, inside an epoch (``training: epoch 3 (early stop ~8, at most 50), batch 120/400,
    41 s, about 2 min left``) or after one (a sweep); the evaluations themselves are logged by the
    trainer.  The lines show wherever the application configured logging (the CLI does; a script:
    ``logging.basicConfig(level="INFO")``); no handler is added here."""

    def __init__(self, every: float = 30.0, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.phase = -1
        self.stop = StopEstimate()

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1
        self.stop.reset(exact=self.phase > 0)
        self.label = PHASES[min(self.phase, 1)]
        self.total_epochs, self.per_epoch = total_epochs, max(1, batches_per_epoch)
        self.epoch, self.batches, self.first = done_epochs, 0, done_epochs
        self.t0 = self.last = self.clock()
        if self.phase == 0:  # the refit's start and length are logged by the pipeline
            rule = (f", early stop after {self.stop.patience} evaluations without improvement (one every "
                    f"{self.stop.eval_every})" if self.stop.known else "")
            log.info("%s: at most %d epochs%s%s", self.label, total_epochs, rule,
                     f" (from epoch {done_epochs})" if done_epochs else "")

    def _due(self) -> bool:
        now = self.clock()
        if now - self.last < self.every:
            return False
        self.last = now
        return True

    def _left(self, epochs_done: float) -> str:
        per = (self.clock() - self.t0) / epochs_done if epochs_done > 0 else None
        left = remaining_text(per, self.first + epochs_done, self.total_epochs, self.stop)
        return f", {left}" if left else ""

    def batch(self, epoch: int, loss: float) -> None:
        if epoch != self.epoch:
            self.epoch, self.batches = epoch, 0
        self.batches += 1
        if self.per_epoch > 1 and self.batches < self.per_epoch and self._due():
            done = epoch - self.first + self.batches / self.per_epoch
            log.info("%s, batch %d/%d, %.0f s%s", phase_text(self.label, epoch + 1, self.total_epochs, self.stop),
                     self.batches, self.per_epoch, self.clock() - self.t0, self._left(done))

    def epoch_end(self, record: dict) -> None:
        self.epoch = int(record["epoch"])
        self.stop.see(record)
        if record.get("valid"):  # the trainer logs evaluations
            self.last = self.clock()
        elif self._due():
            log.info("%s done, loss %s, %.0f s%s", phase_text(self.label, self.epoch, self.total_epochs, self.stop),
                     _fmt_loss(record.get("loss")), self.clock() - self.t0, self._left(self.epoch - self.first))

    def close(self) -> None:
        pass


def _watched() -> bool:
    """A person watches: Jupyter, or stderr on a terminal (the CLI's rule for its bar)."""
    try:
        return _in_notebook() or sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def tell_layers(progress, layers: list[str] | None) -> None:
    """Give the config's layers to every `FallingWatch` inside `progress` (for its message)."""
    if isinstance(progress, FallingWatch):
        progress.layers = layers
    for part in getattr(progress, "parts", []):
        tell_layers(part, layers)
    if getattr(progress, "watch", None) is not None:
        tell_layers(progress.watch, layers)


def default_progress(progress, layers: list[str] | None = None):
    """What `Recommender.fit(progress=...)` runs with: ``"auto"`` (the default) -> where a person
    watches (Jupyter, or stderr on a terminal: the CLI's rule for its bar) `NotebookProgress`, else
    `LogProgress` (lines on the ``jnskr`` logger); ``True`` -> `NotebookProgress`; ``False``/None ->
    none; an object -> itself.  Whatever it is, the falling-validation rule watches the run (a
    Python warning where no progress object reports it), its message naming `layers`."""
    if progress == "auto":
        progress = NotebookProgress() if _watched() else LogProgress()
    elif progress is True:
        progress = NotebookProgress()
    elif progress in (False, None):
        progress = None
    if progress is None or not getattr(progress, "watches_validation", False):
        progress = FanOut(progress, FallingWatch(emit=_python_warning))
    tell_layers(progress, layers)
    return progress


def _python_warning(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=2)
