"""Each training is a Sacred run: config, per-epoch metrics, artifacts and captured output.

The recording is one wrapper, :func:`recorded`, applied where the pipeline is wired
(``pipeline.py``): the training nodes only train and return the model, its history and its
report; the wrapper runs them inside a Sacred run (so their output is captured) and records
what they returned. Models are saved once, by the catalog.

Observers come from the ``train_run_folders`` dataset: a ``FileStorageObserver`` under
``data/06_models/sacred`` by default, and a ``MongoObserver`` when that dataset was given a
MongoDB URL through ``credentials.yml`` (see docs/train.md).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dam_detection.machine import describe_machine
from dam_detection.pipelines.train.training import is_chief

# Sacred's file observer keeps these names for itself; an artifact named so breaks the run.
_RESERVED_ARTIFACTS = frozenset({"metrics.json", "run.json", "config.json", "cout.txt"})


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration (names checkpoint folders)."""
    encoded = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.blake2b(encoded, digest_size=8).hexdigest()


#: Seconds to wait for the MongoDB server before the run fails.
MONGO_TIMEOUT_S = 3


def make_observers(folders: Mapping[str, Any]) -> list[Any]:
    """Sacred observers for ``train_run_folders``' ``sacred`` folder and optional ``mongo_url``.

    The file observer goes first: Sacred lets the first observer choose the run id and orders
    observers by ``priority`` (MongoDB's default is higher than the file observer's); the file
    observer picks the next free folder, so runs already on disk never collide with the id
    MongoDB would choose.

    Raises:
        ConnectionError: Within :data:`MONGO_TIMEOUT_S` seconds, if MongoDB is unreachable.
    """
    from sacred.observers import FileStorageObserver, MongoObserver
    from sacred.observers.mongo import DEFAULT_MONGO_PRIORITY

    observers: list[Any] = []
    if folders.get("sacred"):
        observers.append(
            FileStorageObserver(str(folders["sacred"]), priority=DEFAULT_MONGO_PRIORITY + 10)
        )
    if folders.get("mongo_url"):
        url = str(folders["mongo_url"])
        _check_reachable(url)
        observers.append(
            MongoObserver(
                url=url,
                db_name=str(folders["mongo_db"]),
                serverSelectionTimeoutMS=MONGO_TIMEOUT_S * 1000,
            )
        )
    return observers


def _check_reachable(url: str) -> None:
    import pymongo
    from pymongo.errors import PyMongoError

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=MONGO_TIMEOUT_S * 1000
    )
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        where = pymongo.uri_parser.parse_uri(url)["nodelist"]
        raise ConnectionError(
            f"the Sacred MongoDB at {where} did not answer within {MONGO_TIMEOUT_S} s "
            f"({type(error).__name__}): check the `url` of the credentials entry that the "
            "`train_run_folders` catalog entry names (conf/local/credentials.yml), or remove "
            "`credentials` from that entry to record runs as files only"
        ) from None
    finally:
        client.close()


class RunRecorder:
    """What a training body gets to record into its Sacred run."""

    def __init__(self, run: Any, scratch: Path) -> None:
        self._run = run
        self._scratch = scratch
        #: What the run reports as its result (Sacred's ``result`` field).
        self.result: Any = None

    def set_info(self, key: str, value: Any) -> None:
        """Record a JSON-able fact about the run (Sacred's ``info``)."""
        self._run.info[key] = value

    def log_scalar(self, name: str, value: float, step: int) -> None:
        """Record one metric value at one step (epoch)."""
        self._run.log_scalar(name, value, step)

    def add_file(self, write: Callable[[Path], object], name: str) -> None:
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
    experiment.captured_out_filter = apply_backspaces_and_linefeeds  # type: ignore[assignment]  # Sacred declares it None
    experiment.add_config(dict(config))
    for observer in observers:
        experiment.observers.append(observer)
    outcome: dict[str, Any] = {}

    def main(_run: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix="train-artifacts-") as scratch:
            recorder = RunRecorder(_run, Path(scratch))
            outcome["value"] = body(recorder)
        return recorder.result

    experiment.main(main)
    experiment.run()
    return outcome["value"]


def recorded(experiment_name: str, train: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a training node so that it runs as a Sacred run of ``experiment_name``.

    The node must take ``settings`` (the run's config) and ``run_folders`` (where observers
    write) and return ``(model, results, ...)`` with ``results["report"]`` holding the
    ``history`` per epoch and the test metrics, and ``results["scored"]`` the test labels and
    scores. The run records the config, the captured output, every epoch's metrics, the test
    metrics, the report and its figures; only the chief of a multi-worker training records.

    Returns:
        A function with ``train``'s signature (Kedro reads it to wire the inputs).
    """
    signature = inspect.signature(train)

    @functools.wraps(train)
    def run(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        settings, folders = bound.arguments["settings"], bound.arguments["run_folders"]
        observers = make_observers(folders) if is_chief() else []

        def body(recorder: RunRecorder) -> Any:
            outputs = train(*args, **kwargs)
            # Results differ across CPU kinds (oneDNN kernels): say where these came from.
            machine = describe_machine()
            outputs[1]["report"]["machine"] = machine
            recorder.set_info("machine", machine)
            _record_results(recorder, experiment_name.rsplit(".", 1)[-1], outputs[1])
            return outputs

        outputs = run_recorded(experiment_name, settings, body, observers)
        _FINISHED[experiment_name] = observers
        return outputs

    run.sacred_experiment = experiment_name  # type: ignore[attr-defined]  # read by the hook
    return run


#: Observers of the last finished run of each experiment: the catalog's files are added to it
#: once Kedro has saved them (:func:`add_saved_file`).
_FINISHED: dict[str, list[Any]] = {}


def add_saved_file(experiment_name: str, path: str) -> bool:
    """Add a file the catalog saved for a node to that node's finished Sacred run.

    The node's outputs are saved by Kedro after the node (and so its run) has finished; adding
    them afterwards keeps one serialisation of each model, by the catalog, and still puts the
    model, its metadata and its plots in the run.

    Returns:
        Whether a finished run of ``experiment_name`` took the file.
    """
    observers = _FINISHED.get(experiment_name)
    if not observers:
        return False
    name = Path(path).name
    if name in _RESERVED_ARTIFACTS:
        raise ValueError(f"artifact name {name!r} is reserved by Sacred's file observer")
    for observer in observers:
        observer.artifact_event(name=name, filename=path)
    return True


def _record_results(recorder: RunRecorder, name: str, results: Mapping[str, Any]) -> None:
    from dam_detection.pipelines.train import plots

    report = results["report"]
    for key, values in report["history"].items():
        for epoch, value in enumerate(values):
            if value is not None:  # None: an epoch before the first validation
                recorder.log_scalar(key, float(value), epoch)
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
        if report["test"].get(key) is not None:
            recorder.log_scalar(f"test_{key}", float(report["test"][key]), 0)
    recorder.add_json({k: v for k, v in report.items() if k != "history"}, f"{name}_report.json")
    recorder.result = {key: report["test"].get(key) for key in ("f1", "pr_auc", "roc_auc")}
    scored = tuple(results["scored"])
    figures = {
        "curves": plots.training_curves({name: report["history"]}),
        "roc_pr": plots.roc_pr_curves({name: scored}),
        "confusion": plots.confusion_matrices({name: report["test"]["confusion"]}),
    }
    for kind, figure in figures.items():
        recorder.add_file(figure.savefig, f"{name}_{kind}.png")
