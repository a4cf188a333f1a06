"""Each training is a Sacred run: config, per-epoch metrics, artifacts and captured output.

Observers come from the ``train_run_folders`` dataset: a ``FileStorageObserver`` under
``data/06_models/sacred`` by default, and a ``MongoObserver`` when that dataset was given a
MongoDB URL through ``credentials.yml`` (see docs/train.md).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Sacred's file observer keeps these names for itself; an artifact named so breaks the run.
_RESERVED_ARTIFACTS = frozenset({"metrics.json", "run.json", "config.json", "cout.txt"})


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration (names checkpoint folders)."""
    encoded = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.blake2b(encoded, digest_size=8).hexdigest()


def make_observers(folders: Mapping[str, Any]) -> list[Any]:
    """Sacred observers for ``train_run_folders``' ``sacred`` folder and optional ``mongo_url``."""
    from sacred.observers import FileStorageObserver, MongoObserver

    observers: list[Any] = []
    if folders.get("sacred"):
        observers.append(FileStorageObserver(str(folders["sacred"])))
    if folders.get("mongo_url"):
        observers.append(
            MongoObserver(
                url=str(folders["mongo_url"]),
                db_name=str(folders.get("mongo_db") or "sacred"),
                serverSelectionTimeoutMS=10_000,
            )
        )
    return observers


class RunRecorder:
    """What a training body gets to record into its Sacred run."""

    def __init__(self, run: Any, scratch: Path) -> None:
        self._run = run
        self._scratch = scratch

    @property
    def run_id(self) -> Any:
        """The observers' id of this run (the file observer's folder number)."""
        return self._run._id

    def log_scalar(self, name: str, value: float, step: int) -> None:
        """Record one metric value at one step (epoch)."""
        self._run.log_scalar(name, value, step)

    def add_file(self, write: Callable[[Path], None], name: str) -> None:
        """Add an artifact written by ``write(path)`` under ``name``."""
        if name in _RESERVED_ARTIFACTS:
            raise ValueError(f"artifact name {name!r} is reserved by Sacred's file observer")
        path = self._scratch / name
        write(path)
        self._run.add_artifact(str(path), name=name)

    def add_json(self, payload: Mapping[str, Any], name: str) -> None:
        """Add a JSON artifact."""
        self.add_file(lambda path: path.write_text(json.dumps(payload, indent=2)), name)


def run_recorded(
    experiment_name: str,
    config: Mapping[str, Any],
    body: Callable[[RunRecorder], Any],
    observers: list[Any],
) -> Any:
    """Run ``body`` as a Sacred run of a fresh experiment and return what it returns.

    The experiment's config is ``config`` (train parameters and input fingerprint). Standard
    output (Keras progress included) is captured into the run; Sacred seeds Python's and
    NumPy's generators from ``config["seed"]``.
    """
    from sacred import SETTINGS, Experiment
    from sacred.utils import apply_backspaces_and_linefeeds

    # "sys" captures Python-level output, which is where Keras prints; the default "fd" mode
    # redirects file descriptors and fights with test runners and notebooks.
    SETTINGS.CAPTURE_MODE = "sys"
    experiment = Experiment(experiment_name, save_git_info=False, interactive=True)
    experiment.captured_out_filter = apply_backspaces_and_linefeeds
    experiment.add_config(dict(config))
    for observer in observers:
        experiment.observers.append(observer)
    outcome: dict[str, Any] = {}

    def main(_run: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix="train-artifacts-") as scratch:
            outcome["value"] = body(RunRecorder(_run, Path(scratch)))
        result = outcome["value"]
        return result.get("summary") if isinstance(result, dict) else None

    experiment.main(main)
    run = experiment.run()
    outcome["run_id"] = run._id
    return outcome["value"]
