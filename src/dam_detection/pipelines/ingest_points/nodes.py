"""Nodes of ``ingest_points``: sources in, one validated, de-duplicated, split points table out."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from dam_detection.image_sources.base import WaterEdgeSampling, make_image_source
from dam_detection.pipelines.ingest_points import spatial
from dam_detection.pipelines.ingest_points.negatives import random_points_in_regions, regions_frame
from dam_detection.pipelines.ingest_points.report import build_report, plain_counts, plot_points_map
from dam_detection.pipelines.ingest_points.sources import CANDIDATE_COLUMNS, standardize_source

__all__ = [
    "assign_splits",
    "build_regions",
    "build_report",
    "combine_candidates",
    "plot_points_map",
    "read_source",
    "sample_random_points",
    "sample_water_edge_points",
    "select_points",
]

logger = logging.getLogger(__name__)

#: Column order of the points table (docs/architecture.md).
POINT_COLUMNS = ("point_id", "point_index", "source", "kind", "label", "name", "split", "geometry")
#: When duplicates merge, the kind listed first wins (then the source listed first).
KIND_PRIORITY = ("dam", "bridge", "water_edge", "random")
#: Source names of the generated negatives.
WATER_EDGE_SOURCE = "water_edge"
RANDOM_SOURCE = "random"


def read_source(
    raw: pd.DataFrame, settings: Mapping[str, Any], source: str
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Validate one configured source (see :func:`sources.standardize_source`).

    Args:
        raw: What the source's catalog entry loaded.
        settings: ``params:ingest_points.sources.<source>``.
        source: The source name, bound when the pipeline is built.

    Returns:
        Candidate rows and the source's summary (rows in, kept, rejected by reason).
    """
    candidates, summary = standardize_source(raw, source, settings)
    summary["source"] = source
    if summary["rejected"] or summary["filtered"]:
        logger.warning(
            "%s (%s): kept %d of %d rows; rejected %s; filtered %s; examples %s",
            source, summary["file"], summary["kept"], summary["rows_in"],
            summary["rejected"], summary["filtered"], summary["examples"],
        )  # fmt: skip
    return candidates, summary


def build_regions(regions: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Regions of interest for negatives, from ``params:ingest_points.regions``.

    Args:
        regions: Entries with ``name`` and ``bbox`` or ``polygon`` (degrees).

    Returns:
        Polygons with a ``name`` column, EPSG:4326.
    """
    return regions_frame(regions)


def sample_water_edge_points(
    regions: gpd.GeoDataFrame, image_source: Mapping[str, Any], water_edges: Mapping[str, Any]
) -> gpd.GeoDataFrame:
    """Ask the configured image source for water-edge points inside ``regions``.

    Args:
        regions: Region polygons with a ``name`` column.
        image_source: ``params:image_source`` (``kind`` plus that source's settings).
        water_edges: ``params:ingest_points.water_edges``: ``enabled`` and ``sampling``
            (the fields of :class:`WaterEdgeSampling`).

    Returns:
        Points with a ``region`` column, EPSG:4326; empty when disabled.
    """
    if not water_edges.get("enabled", True):
        return gpd.GeoDataFrame({"region": []}, geometry=gpd.points_from_xy([], []), crs=4326)
    sampling = WaterEdgeSampling(**water_edges.get("sampling", {}))
    points = make_image_source(image_source).water_edge_points(regions, sampling)
    return points if points.crs is None else points.to_crs(4326)


def sample_random_points(
    regions: gpd.GeoDataFrame, random_negatives: Mapping[str, Any]
) -> gpd.GeoDataFrame:
    """Seeded random points over the regions, by ground area.

    Args:
        regions: Region polygons with a ``name`` column.
        random_negatives: ``count`` and ``seed``.

    Returns:
        Points with a ``region`` column, EPSG:4326.
    """
    return random_points_in_regions(
        regions, int(random_negatives.get("count", 0)), int(random_negatives.get("seed", 42))
    )


def combine_candidates(
    params: Mapping[str, Any],
    water_edges: gpd.GeoDataFrame,
    random_points: gpd.GeoDataFrame,
    *source_parts: Any,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Stack the candidates of every source and of the generated negatives.

    Args:
        params: ``params:ingest_points``.
        water_edges: Output of :func:`sample_water_edge_points`.
        random_points: Output of :func:`sample_random_points`.
        *source_parts: ``candidates, summary`` pairs of the wired sources, in order.

    Returns:
        All candidates (with ``lon``, ``lat`` and a ``priority`` for duplicate merging) and
        the summaries.

    Raises:
        ValueError: If the parameters name a source the pipeline was built without.
    """
    parts = [(source_parts[i], source_parts[i + 1]) for i in range(0, len(source_parts), 2)]
    wired = [summary["source"] for _, summary in parts]
    missing = [name for name in params.get("sources", {}) if name not in wired]
    if missing:
        raise ValueError(
            f"sources {missing} are configured in ingest_points.sources but the pipeline was "
            f"built with {wired}: the source list is read from conf/base and conf/$KEDRO_ENV when "
            "the pipeline is created, so run with KEDRO_ENV=<env> or add the source to conf/base"
        )
    for source, frame, kind in (
        (WATER_EDGE_SOURCE, water_edges, "water_edge"),
        (RANDOM_SOURCE, random_points, "random"),
    ):
        parts.append(read_source(frame, {"reader": "vector", "kind": kind}, source))
    kind_rank = {kind: rank for rank, kind in enumerate(KIND_PRIORITY)}
    frames = []
    for order, (frame, summary) in enumerate(parts):
        # Each source holds one kind and label, so its priority is one number: dams first,
        # then by kind, then in source order.
        label = int(frame["label"].iloc[0]) if len(frame) else 0
        rank = kind_rank.get(summary["kind"], len(KIND_PRIORITY))
        priority = -label * 1_000_000 + rank * 1_000 + order
        frames.append(frame.assign(priority=priority, lon=frame.geometry.x, lat=frame.geometry.y))
    candidates = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    return candidates, [summary for _, summary in parts]


def select_points(
    candidates: gpd.GeoDataFrame, params: Mapping[str, Any]
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Merge duplicates, drop negatives near dams, then cap each kind to its share.

    Args:
        candidates: Output of :func:`combine_candidates`.
        params: ``params:ingest_points``: ``merge_distance_m``, ``min_distance_to_dam_m`` and
            ``sampling`` (``max_points``, ``fractions`` per kind, ``seed``).

    Returns:
        The selected rows (:data:`CANDIDATE_COLUMNS`) and what each step removed.

    Raises:
        ValueError: If a kind has no share in ``sampling.fractions`` while capping.
    """
    vectors = spatial.unit_vectors(candidates["lon"].to_numpy(), candidates["lat"].to_numpy())
    merge_m = float(params.get("merge_distance_m", 50.0))
    groups = spatial.duplicate_groups(vectors, merge_m)
    keep = spatial.first_of_groups(groups, candidates["priority"].to_numpy())
    merged = candidates.loc[~keep, "source"].value_counts().to_dict()

    dams = keep & (candidates["label"].to_numpy() == 1)
    exclusion_m = float(params.get("min_distance_to_dam_m", 2000.0))
    negatives = keep & ~dams
    near_dam = np.zeros(len(candidates), dtype=bool)
    near_dam[negatives] = spatial.within_distance(vectors[negatives], vectors[dams], exclusion_m)
    near = candidates.loc[near_dam, "kind"].value_counts().to_dict()
    selected = candidates.loc[keep & ~near_dam, [*CANDIDATE_COLUMNS, "lon", "lat"]]

    sampling = params.get("sampling", {}) or {}
    capped, quotas, dropped = _cap_kinds(selected, sampling)
    stats = {
        "merged_duplicates": {
            "distance_m": merge_m,
            "removed": int((~keep).sum()),
            "groups_with_duplicates": int(len(np.unique(groups[~keep]))),
            "removed_by_source": plain_counts(merged),
        },
        "near_dam_dropped": {"distance_m": exclusion_m, "by_kind": plain_counts(near)},
        "capped": {"max_points": sampling.get("max_points"), "quota": quotas, "dropped": dropped},
    }
    return capped, stats


def _cap_kinds(
    selected: gpd.GeoDataFrame, sampling: Mapping[str, Any]
) -> tuple[gpd.GeoDataFrame, dict[str, int], dict[str, int]]:
    max_points = sampling.get("max_points")
    if max_points is None:
        return selected.reset_index(drop=True), {}, {}
    fractions = sampling.get("fractions", {})
    rng = np.random.default_rng(int(sampling.get("seed", 42)))
    keep = np.zeros(len(selected), dtype=bool)
    quotas = _quotas(int(max_points), fractions)
    dropped: dict[str, int] = {}
    kinds = selected["kind"].to_numpy()
    for kind in sorted(set(kinds)):
        if kind not in fractions:
            raise ValueError(
                f"kind {kind!r} has no share in ingest_points.sampling.fractions "
                f"{dict(fractions)}: add one, or set sampling.max_points to null to keep all"
            )
        rows = np.flatnonzero(kinds == kind)
        chosen = (
            rows if len(rows) <= quotas[kind] else rng.choice(rows, quotas[kind], replace=False)
        )
        keep[chosen] = True
        dropped[kind] = int(len(rows) - len(chosen))
    return selected.loc[keep].reset_index(drop=True), quotas, dropped


def _quotas(max_points: int, fractions: Mapping[str, float]) -> dict[str, int]:
    # Largest remainders, so that the quotas add up to exactly ``max_points``.
    shares = np.array([float(fractions[kind]) for kind in fractions])
    if (shares < 0).any() or shares.sum() <= 0:
        raise ValueError(f"ingest_points.sampling.fractions {dict(fractions)} must be >= 0")
    exact = max_points * shares / shares.sum()
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(quotas - exact, kind="stable")[: max_points - quotas.sum()]] += 1
    return {kind: int(quota) for kind, quota in zip(fractions, quotas, strict=True)}


def assign_splits(
    selected: gpd.GeoDataFrame, split: Mapping[str, Any]
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Split by grid blocks and number the points: the final points table.

    Args:
        selected: Output of :func:`select_points`.
        split: ``params:ingest_points.split``: ``block_size_km``, ``fractions``, ``seed``.

    Returns:
        The points table (:data:`POINT_COLUMNS`, ``point_index`` 0..N-1 in ``point_id`` order)
        and split statistics, including the smallest distance between points of different
        splits in metres.
    """
    lon, lat = selected["lon"].to_numpy(), selected["lat"].to_numpy()
    fractions = split.get("fractions", {"train": 0.7, "val": 0.15, "test": 0.15})
    block_km = float(split.get("block_size_km", 50.0))
    splits = spatial.random_grid_cell_assignment(
        lon, lat, block_km, fractions, int(split.get("seed", 42))
    )
    smallest = spatial.smallest_cross_split_distance_m(spatial.unit_vectors(lon, lat), splits)
    points = selected.assign(split=splits)
    # NumPy sorts a fixed-width string array about twice as fast as pandas sorts objects.
    order = np.argsort(points["point_id"].to_numpy(dtype=str), kind="stable")
    points = points.iloc[order].reset_index(drop=True)
    points["point_index"] = np.arange(len(points), dtype=np.int64)
    points["label"] = points["label"].astype(np.int64)
    points = gpd.GeoDataFrame(points[list(POINT_COLUMNS)], geometry="geometry", crs="EPSG:4326")
    stats = {
        "block_size_km": block_km,
        "fractions": dict(fractions),
        "seed": int(split.get("seed", 42)),
        "smallest_cross_split_distance_m": None if smallest is None else round(smallest, 1),
    }
    return points, stats
