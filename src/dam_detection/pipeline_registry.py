"""Project pipelines: found by folder, run in the order the data flows."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The order in which ``kedro run`` runs them; Kedro also orders nodes by their data dependencies.
PIPELINE_ORDER = ("ingest_points", "gee_export", "shard_tfrecords", "train", "segment")
#: Pipelines run only when named (``kedro run --pipelines upload --env earthengine``).
OPTIONAL_PIPELINES = ("upload",)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` runs those of
        ``PIPELINE_ORDER``, not the optional ones.
    """
    pipelines = find_pipelines(raise_errors=True)
    ordered = [pipelines[name] for name in PIPELINE_ORDER if name in pipelines]
    pipelines["__default__"] = sum(ordered, Pipeline([]))
    return pipelines
