"""Reproducible, resumable Keras training: seeding, distribution strategy, callbacks, fit.

Checkpoints live in a folder per training (keyed by the configuration's fingerprint):
``backup/`` holds Keras' ``BackupAndRestore`` state (weights, optimizer, epoch) written after
every epoch and deleted when training ends, so a training that was interrupted resumes from its
last completed epoch; ``best.weights.h5`` and ``state.json`` keep the best epoch's weights and
the curves so far, which survive the interruption too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import keras
import tensorflow as tf

from dam_detection.progress import Progress

logger = logging.getLogger(__name__)

StrategyName = Literal["none", "mirrored", "multi_worker"]
ScheduleName = Literal["plateau", "cosine"]


def configure_determinism(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras from one number and turn on op determinism, so
    two trainings with the same seed give bit-identical weights on the same machine.
    """
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def configure_precision(mixed: bool) -> str:
    """Set Keras' global dtype policy for the models built next, and return its name.

    ``mixed_float16`` computes in float16 on GPUs' tensor cores while weights and outputs stay
    float32; on a CPU it only adds casts, so without a GPU the request is refused with a
    warning and training stays in float32.
    """
    if mixed and not tf.config.list_physical_devices("GPU"):
        logger.warning(
            "train.mixed_precision is on but this machine has no GPU: mixed_float16 pays only "
            "on GPUs, so training runs in float32"
        )
        mixed = False
    policy = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_strategy(name: StrategyName) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named in ``train.distribute.strategy``.

    ``mirrored`` copies the model to every local GPU (or the CPU); ``multi_worker`` trains on
    several machines listed in the ``TF_CONFIG`` environment variable.

    Raises:
        ValueError: If the name is unknown.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}: choose none, mirrored or multi_worker")


def is_chief() -> bool:
    """Whether this process writes results: the only process, the ``chief`` task, or worker 0
    of a cluster without a chief (as ``TF_CONFIG`` describes it).
    """
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def shard_options(num_files: int, strategy: tf.distribute.Strategy) -> tf.data.Options:
    """Auto-sharding that fits the shards: each worker reads its own shard files when there are
    at least as many files as workers, else every worker reads all and keeps its share.
    """
    options = tf.data.Options()
    workers = getattr(strategy.extended, "_num_workers", 1) or 1
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = (
        policy.FILE if num_files >= workers else policy.DATA
    )
    return options


class KeepBest(keras.callbacks.Callback):
    """Keep the best epoch's weights and the per-epoch curves in a folder, across interruptions.

    Args:
        folder: Where ``best.weights.h5`` and ``state.json`` live.
        monitor: Log key to minimise, e.g. ``val_loss``.
    """

    def __init__(self, folder: Path, monitor: str = "val_loss") -> None:
        super().__init__()
        self.folder = Path(folder)
        self.monitor = monitor
        state_path = self.folder / "state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        self.best = float(state.get("best", float("inf")))
        self.best_epoch = int(state.get("best_epoch", -1))
        self.history: dict[str, list[float | None]] = state.get("history", {})

    @property
    def weights_path(self) -> Path:
        """File of the best weights."""
        return self.folder / "best.weights.h5"

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        """Record the epoch's logs; keep its weights if it is the best so far."""
        logs = dict(logs or {})
        for key in dict.fromkeys([*self.history, *logs]):
            # One entry per epoch in every series: None where the epoch did not log the key
            # (validation starts after ``validate_after``); a resumed epoch replaces its own.
            series = self.history.setdefault(key, [])
            del series[epoch:]
            series.extend([None] * (epoch - len(series)))
            series.append(float(logs[key]) if key in logs else None)
        value = float(logs.get(self.monitor, float("inf")))  # no validation this epoch: inf
        if value < self.best:
            self.best, self.best_epoch = value, epoch
            partial = self.folder / "best.partial.weights.h5"
            self.model.save_weights(partial)
            os.replace(partial, self.weights_path)
        state = {"best": self.best, "best_epoch": self.best_epoch, "history": self.history}
        partial_state = self.folder / "state.json.tmp"
        partial_state.write_text(json.dumps(state))
        os.replace(partial_state, self.folder / "state.json")


def cosine_learning_rate(epoch: int, epochs: int, initial: float, minimum: float) -> float:
    """Learning rate of ``epoch`` (0-based) on a cosine from ``initial`` down to ``minimum``
    at the last of ``epochs`` epochs.

    A fixed schedule reaches its small final rates by a known epoch, where waiting for plateaus
    spends several epochs per halving: a fixed time budget then buys a known amount of training.
    """
    if epochs <= 1:
        return float(initial)
    progress = min(max(epoch, 0), epochs - 1) / (epochs - 1)
    return float(minimum + 0.5 * (initial - minimum) * (1.0 + math.cos(math.pi * progress)))


def learning_rate_callback(
    schedule: ScheduleName, settings: Mapping[str, Any], epochs: int, initial: float
) -> keras.callbacks.Callback:
    """The callback that lowers the learning rate (each model's ``learning_rate_schedule``).

    ``plateau`` halves it (``reduce_lr_factor``) after ``reduce_lr_patience`` epochs without a
    better ``monitor``; ``cosine`` follows :func:`cosine_learning_rate` over ``epochs``.

    Raises:
        ValueError: If the schedule is unknown.
    """
    minimum = float(settings["min_learning_rate"])
    if schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor=str(settings["monitor"]),
            factor=float(settings["reduce_lr_factor"]),
            patience=int(settings["reduce_lr_patience"]),
            min_lr=minimum,
        )
    if schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: cosine_learning_rate(epoch, int(epochs), float(initial), minimum)
        )
    raise ValueError(f"unknown learning_rate_schedule {schedule!r}: choose plateau or cosine")


class EpochProgress(keras.callbacks.Callback):
    """One log line per epoch: the monitored loss, the time so far and an ETA.

    The ETA assumes every remaining epoch runs; early stopping may end the training sooner.
    """

    def __init__(self, label: str, epochs: int, monitor: str) -> None:
        super().__init__()
        self.label, self.epochs, self.monitor = label, int(epochs), monitor
        self.progress: Progress | None = None

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        """Start the clock (a resumed training counts from its first epoch here)."""
        self.progress = Progress(logger, f"train {self.label}", self.epochs, "epochs", 0.0)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        """Log the epoch's line."""
        if self.progress is None:
            return
        self.progress.done = epoch  # counts from a resumed epoch too
        value = (logs or {}).get(self.monitor)
        shown = "not validated" if value is None else f"{float(value):.5g}"
        self.progress.label = f"train {self.label} ({self.monitor} {shown})"
        self.progress.update()


class EpochTimes(keras.callbacks.Callback):
    """Where each epoch's time goes: training steps, validation, the rest (callbacks,
    checkpoints), and how busy the cores were while training (process CPU over wall time).

    ``summary()`` gives totals and per-epoch means for the training report: the figures to look
    at before spending a default run's minutes elsewhere.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict[str, float]] = []
        self._marks: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _now() -> tuple[float, float]:
        times = os.times()
        return time.perf_counter(), times.user + times.system

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        """Start the epoch's clocks."""
        self._marks = {"begin": self._now()}

    def on_test_begin(self, logs: Mapping[str, float] | None = None) -> None:
        """Training steps end where validation begins."""
        self._marks["test_begin"] = self._now()

    def on_test_end(self, logs: Mapping[str, float] | None = None) -> None:
        """Validation ends."""
        self._marks["test_end"] = self._now()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        """Record the epoch (callbacks after this one, such as checkpoints, count to the next)."""
        (begin, cpu_begin), end = self._marks["begin"], self._now()
        test_begin, cpu_test = self._marks.get("test_begin", end)
        test_end, _ = self._marks.get("test_end", end)
        train_s = test_begin - begin
        self.epochs.append(
            {
                "train_s": train_s,
                "validation_s": test_end - test_begin,
                "other_s": end[0] - test_end,
                "train_cpu_per_wall": (cpu_test - cpu_begin) / max(train_s, 1e-9),
            }
        )

    def summary(self) -> dict[str, float]:
        """Totals of each part and the mean cores busy while training, over every epoch."""
        if not self.epochs:
            return {}
        total = {key: sum(e[key] for e in self.epochs) for key in ("train_s", "validation_s")}
        total["other_s"] = sum(e["other_s"] for e in self.epochs)
        busy = sum(e["train_cpu_per_wall"] * e["train_s"] for e in self.epochs)
        # The first epoch also fills the input cache and traces the step: the spread of the
        # others shows stalls (an epoch far above the median) that totals hide.
        later = sorted(e["train_s"] for e in self.epochs[1:]) or [self.epochs[0]["train_s"]]
        return {
            **{key: round(value, 1) for key, value in total.items()},
            "epochs": len(self.epochs),
            "train_cores_busy": round(busy / max(total["train_s"], 1e-9), 2),
            "epoch_train_s_median": round(later[len(later) // 2], 2),
            "epoch_train_s_max": round(later[-1], 2),
        }


def validation_epochs(epochs: int, validate_after: float) -> list[int]:
    """The epochs (1-based, as Keras' ``validation_freq`` counts them) that validate: every
    epoch after the first ``validate_after`` share of ``epochs``, the last one always.

    Validation only ranks epochs; it changes no weight. With a cosine schedule the early
    epochs, at large rates, are not where the best one lies, and the FCN's validation (a
    forward pass over windows twice its training crop) costs a quarter of an epoch.
    """
    if not 0.0 <= validate_after < 1.0:
        raise ValueError(f"validate_after must be in [0, 1), got {validate_after}")
    first = int(math.floor(validate_after * epochs)) + 1
    return list(range(min(first, epochs), epochs + 1))


def fit_resumable(
    model: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    *,
    epochs: int,
    checkpoint_dir: Path,
    callback_settings: Mapping[str, Any],
    verbose: int | str = 2,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Train with early stopping, learning-rate reduction, best-checkpoint keeping and resume.

    A fresh training (no ``backup/`` in ``checkpoint_dir``) starts from a clean folder; an
    interrupted one resumes from its last epoch. The best epoch's weights are loaded into
    ``model`` at the end.

    Args:
        model: A compiled model.
        train_data: One epoch of training batches.
        validation_data: Validation batches.
        epochs: Most epochs to train.
        checkpoint_dir: Folder of this training's checkpoints.
        callback_settings: ``train.callbacks`` (``monitor``, ``early_stopping_patience``,
            ``reduce_lr_patience``, ``reduce_lr_factor``, ``min_learning_rate``,
            ``validate_after``: see :func:`validation_epochs`) with the model's
            ``learning_rate_schedule`` (``plateau`` or ``cosine``; see
            :func:`learning_rate_callback`).
        verbose: Keras progress output (``2``: one line per epoch; ``1``: progress bar).
        extra_callbacks: More callbacks.

    Returns:
        ``{"history": {key: [per epoch]}, "best_epoch", "best", "epochs_run", "resumed_from"}``.
    """
    checkpoint_dir = Path(checkpoint_dir)
    backup_dir = checkpoint_dir / "backup"
    resumed_from = 0
    if backup_dir.exists():
        meta = backup_dir / "training_metadata.json"
        resumed_from = int(json.loads(meta.read_text())["epoch"]) if meta.exists() else 0
    elif checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    monitor = str(callback_settings["monitor"])
    keep_best = KeepBest(checkpoint_dir, monitor)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=True),
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            patience=int(callback_settings["early_stopping_patience"]),
        ),
        learning_rate_callback(
            callback_settings["learning_rate_schedule"],
            callback_settings,
            int(epochs),
            float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        ),
        keep_best,
        *extra_callbacks,
    ]
    with warnings.catch_warnings():
        # Epochs are one pass over finite shards of unknown length; Keras says so once.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # Before the first validation the monitor is missing by design, every epoch (a
        # mistyped monitor still stops: Keras' EarlyStopping raises on a name it cannot rank).
        warnings.filterwarnings("ignore", message=".*conditioned on metric")
        model.fit(
            train_data,
            validation_data=validation_data,
            validation_freq=validation_epochs(
                int(epochs), float(callback_settings["validate_after"])
            ),
            epochs=int(epochs),
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the input pipeline shuffles, seeded
        )
    if keep_best.weights_path.exists():
        model.load_weights(keep_best.weights_path)
    epochs_run = len(next(iter(keep_best.history.values()), []))
    return {
        "history": keep_best.history,
        "best_epoch": keep_best.best_epoch,
        "best": keep_best.best,
        "epochs_run": epochs_run,
        "resumed_from": resumed_from,
    }
