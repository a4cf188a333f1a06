"""Project pipelines: found by folder, run in the order the data flows."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from dam_detection.pipelines.gee_export.pipeline import SCENES_TAG

# The order in which ``kedro run`` runs them; Kedro also orders nodes by their data dependencies.
PIPELINE_ORDER = ("ingest_points", "gee_export", "shard_tfrecords", "train", "scan")
#: Pipelines run only when named: ``segment`` judges hand-placed scenes
#: (``kedro run --pipelines "gee_export,segment"``), ``upload`` sends heatmaps to Earth Engine
#: (``kedro run --pipelines upload --env earthengine``).
OPTIONAL_PIPELINES = ("segment", "upload")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` runs those of
        ``PIPELINE_ORDER``, not the optional ones, and not the scene export only ``segment``
        reads.
    """
    pipelines = find_pipelines(raise_errors=True)
    ordered = sum((pipelines[name] for name in PIPELINE_ORDER if name in pipelines), Pipeline([]))
    pipelines["__default__"] = ordered - ordered.only_nodes_with_tags(SCENES_TAG)
    return pipelines
