"""Project hooks: the only place where process-wide side effects are set up."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node

logger = logging.getLogger(__name__)


class TelemetryOffHooks:
    """Keep kedro-telemetry quiet even where the project's ``.telemetry`` file is not found."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Set ``DO_NOT_TRACK`` before kedro-telemetry looks."""
        os.environ.setdefault("DO_NOT_TRACK", "1")


class ParameterCheckHooks:
    """Check the whole parameter tree before anything else happens.

    Kedro validates the ``params:`` inputs that nodes annotate; this also catches a key no node
    reads (``patch_radus``), so a typo fails the run at start-up instead of being ignored.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Validate the merged parameters (``--params`` included) against the settings models."""
        from dam_detection.parameters import check_parameters

        # The config loader's view includes --params overrides.
        check_parameters(context.config_loader["parameters"])


class EarthEngineHooks:
    """Initialise Earth Engine once per run when the configured image source is ``earthengine``.

    The implementation lives with the Earth Engine image source; this hook only calls it so that
    no node ever initialises Earth Engine itself.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Initialise Earth Engine from ``conf/local/credentials.yml`` when it is the source."""
        # The raw parameters, not ``context.params``: that would build every pipeline first.
        source = context.config_loader["parameters"].get("image_source", {}) or {}
        if source.get("kind") != "earthengine":
            return
        from dam_detection.image_sources.earthengine.session import (
            initialize_from_credentials,
            load_credentials,
        )

        # load_credentials also reads conf/local, which `--env earthengine` does not load.
        initialize_from_credentials(load_credentials(context.config_loader), source)


class SacredArtifactHooks:
    """Add what the catalog saved for a training node to that node's Sacred run.

    Training nodes are wrapped by :func:`~dam_detection.pipelines.train.sacred_run.recorded`;
    their outputs (model, metadata, plots) are saved by Kedro after the node returns, so the run
    receives the saved files here instead of a second serialisation in the node.
    """

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        """Keep the catalog, to find where a saved dataset's file is."""
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        """If a recorded training node saved a local file, add it to its Sacred run."""
        experiment = getattr(node.func, "sacred_experiment", None)
        if experiment is None or self._catalog is None:
            return
        path = _local_file(self._catalog, dataset_name)
        if path is None:
            return
        from dam_detection.pipelines.train.sacred_run import add_saved_file

        if add_saved_file(experiment, path):
            logger.debug("Sacred run of %s: added %s", experiment, path)


def _local_file(catalog: Any, dataset_name: str) -> str | None:
    # Datasets keep their path in ``_filepath`` (kedro-datasets' convention); in-memory and
    # remote datasets have no local file to add.
    dataset = catalog.get(dataset_name) if hasattr(catalog, "get") else None
    filepath = getattr(dataset, "_filepath", None)
    if filepath is None or getattr(dataset, "_protocol", "file") not in ("file", "local"):
        return None
    return str(filepath) if os.path.isfile(str(filepath)) else None


#: Loggers whose records go to the run's log file only (not the console).
FILE_ONLY_LOGGERS = ("dam_detection.model_summary",)


class RunLogFileHooks:
    """Write each run's log to ``data/08_reporting/logs/<start time>.log``.

    The console shows INFO and above (``conf/logging.yml``); the file gets the same records plus
    those meant for the file only, such as Keras' model summaries.
    """

    def __init__(self) -> None:
        self._handler: logging.Handler | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Open the run's log file under the project's ``data/08_reporting/logs``."""
        self._close()
        folder = Path(context.project_path) / "data" / "08_reporting" / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        handler = logging.FileHandler(folder / f"{stamp}-{os.getpid()}.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(handler)
        for name in FILE_ONLY_LOGGERS:
            logging.getLogger(name).addHandler(handler)
        self._handler = handler
        _import_tensorflow_quietly(handler.stream)

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Close the run's log file."""
        self._close()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Close the run's log file (it holds the error)."""
        self._close()

    def _close(self) -> None:
        if self._handler is None:
            return
        logging.getLogger().removeHandler(self._handler)
        for name in FILE_ONLY_LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        self._handler.close()
        self._handler = None


def _import_tensorflow_quietly(log: Any) -> None:
    """Import TensorFlow with its C++ start-up notices sent to the run's log file.

    TensorFlow writes them (CUDA probing, "All log messages before absl::InitializeLog()") to
    file descriptor 2 before its logging is set up, where no environment variable reaches them.
    The pipelines import TensorFlow anyway; importing it here, with descriptor 2 pointing at the
    log file for that moment, keeps the console readable and the notices on record. Listing the
    devices belongs to the same moment: it is where TensorFlow probes CUDA, and on a machine
    without a GPU it prints "failed call to cuInit" at its first operation otherwise. A failing
    import still raises here, with its Python traceback on the console.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    log.flush()
    saved = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        import tensorflow

        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class RunTimingHooks:
    """Write where the run's time and memory went to ``data/08_reporting/run_timings.json``
    (:mod:`dam_detection.run_timings`) and log its per-pipeline table.

    The figures cover the nodes this run executed: a run of one pipeline times that pipeline.
    """

    def __init__(self) -> None:
        self._timer: Any = None
        self._folder: Path | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Note where the report goes."""
        self._folder = Path(context.project_path) / "data" / "08_reporting"

    @hook_impl
    def before_pipeline_run(self) -> None:
        """Start the clocks and the memory sampler."""
        from dam_detection.run_timings import RunTimer

        self._timer = RunTimer()
        self._timer.start()

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """A node starts."""
        if self._timer is not None:
            self._timer.node_started(node.name, node.namespace or node.name)

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        """A node's function returned."""
        if self._timer is not None:
            self._timer.node_finished(node.name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        """An output was saved (lazy outputs do their work here)."""
        if self._timer is not None:
            self._timer.node_saved(node.name)

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Write the report and log the table."""
        from dam_detection.run_timings import table

        timer, self._timer = self._timer, None
        if timer is None or self._folder is None:
            return
        timer.stop()
        report = timer.report()
        self._folder.mkdir(parents=True, exist_ok=True)
        partial = self._folder / "run_timings.json.tmp"
        partial.write_text(json.dumps(report, indent=1))
        os.replace(partial, self._folder / "run_timings.json")
        logger.info("Where the run's time went (run_timings.json)\n%s", table(report))

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Stop the sampler of a failed run (no report: its figures would mislead)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None


class RunSummaryHooks:
    """End a run with what it found: the scan's (or the segment pipeline's) summary is the last
    thing logged, with where the review page was written.

    Kedro orders nodes by data dependencies only, so plot nodes of other pipelines may finish
    after the summary node; repeating its summary here puts it at the very end.
    """

    #: Summaries, in the order they are logged.
    SUMMARIES = ("segment_summary", "scan_summary")

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        """Keep the catalog: the review page's folder is its entry's."""
        self._catalog = catalog

    @hook_impl
    def after_pipeline_run(self, run_result: dict[str, Any]) -> None:
        """Log each summary this run made, as the last thing."""
        for name in self.SUMMARIES:
            # Kedro passes the pipeline's outputs as datasets, not as their data.
            summary = (run_result or {}).get(name)
            if summary is not None and hasattr(summary, "load"):
                summary = summary.load()
            if not (isinstance(summary, dict) and summary.get("text")):
                continue
            text = summary["text"]
            page = self._review_page() if name == "scan_summary" else None
            if page is not None:
                text += f"\nReview page: {page}"
            logger.info("Run summary\n%s", text)

    def _review_page(self) -> str | None:
        try:
            path = self._catalog["scan_review"]._describe()["path"]
        except (KeyError, TypeError, AttributeError):
            return None
        return str(Path(path).resolve() / "index.html")
