"""Wiring of ``ingest_points``: one reading node per configured source, then one shared path.

The sources are the keys of ``ingest_points.sources``; each key is also the name of the catalog
entry that loads it. They are read from the project configuration when the pipeline is built
(``conf/base`` plus ``conf/$KEDRO_ENV`` or ``conf/local``), so adding a source takes a catalog
entry and a few lines of parameters, no code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from functools import partial, update_wrapper
from pathlib import Path

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.ingest_points.nodes import (
    assign_splits,
    build_regions,
    build_report,
    combine_candidates,
    plot_points_map,
    read_source,
    sample_random_points,
    sample_water_edge_points,
    select_points,
)

logger = logging.getLogger(__name__)

#: Sources used when no project configuration can be found (e.g. outside a project folder).
DEFAULT_SOURCES = ("nid_dams", "nbi_bridges")


def configured_sources(project_path: Path | None = None, env: str | None = None) -> list[str]:
    """Names of the sources under ``ingest_points.sources`` in the project configuration.

    Args:
        project_path: Kedro project folder; default: the one holding the working directory.
        env: Configuration environment; default ``$KEDRO_ENV`` (else Kedro's default run env).

    Returns:
        The source names, in configuration order.
    """
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    project = project_path or find_kedro_project(Path.cwd())
    if project is None:
        logger.warning("no Kedro project around %s: using sources %s", Path.cwd(), DEFAULT_SOURCES)
        return list(DEFAULT_SOURCES)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project) / settings.CONF_SOURCE),
        env=env or os.getenv("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return list((loader["parameters"].get("ingest_points") or {}).get("sources") or {})


def create_pipeline(sources: Iterable[str] | None = None, **kwargs: object) -> Pipeline:
    """Build ``ingest_points``.

    Args:
        sources: Source names (catalog entries); default :func:`configured_sources`.
        **kwargs: Ignored (Kedro passes none).

    Returns:
        The pipeline: sources → candidates → selected points → split points table + report.
    """
    names = list(sources) if sources is not None else configured_sources()
    readers = []
    source_outputs: list[str] = []
    for name in names:
        outputs = [f"ingest_points_candidates__{name}", f"ingest_points_summary__{name}"]
        readers.append(
            Node(
                update_wrapper(partial(read_source, source=name), read_source),
                inputs=[name, f"params:ingest_points.sources.{name}"],
                outputs=outputs,
                name=f"read_source__{name}",
            )
        )
        source_outputs += outputs
    return Pipeline(
        [
            *readers,
            Node(build_regions, "params:ingest_points.regions", "ingest_points_regions",
                 name="build_regions"),
            Node(sample_water_edge_points,
                 ["ingest_points_regions", "params:image_source",
                  "params:ingest_points.water_edges"],
                 "ingest_points_water_edges", name="sample_water_edge_points"),
            Node(sample_random_points,
                 ["ingest_points_regions", "params:ingest_points.random_negatives"],
                 "ingest_points_random", name="sample_random_points"),
            Node(combine_candidates,
                 ["params:ingest_points", "ingest_points_water_edges", "ingest_points_random",
                  *source_outputs],
                 ["ingest_points_candidates", "ingest_points_summaries"],
                 name="combine_candidates"),
            Node(select_points, ["ingest_points_candidates", "params:ingest_points"],
                 ["ingest_points_selected", "ingest_points_selection_stats"],
                 name="select_points"),
            Node(assign_splits, ["ingest_points_selected", "params:ingest_points.split"],
                 ["points", "ingest_points_split_stats"], name="assign_splits"),
            Node(build_report,
                 ["ingest_points_summaries", "ingest_points_selection_stats",
                  "ingest_points_split_stats", "points"],
                 "ingest_points_report", name="build_ingest_points_report"),
            Node(plot_points_map, "points", "points_map", name="plot_points_map"),
        ]
    )  # fmt: skip
