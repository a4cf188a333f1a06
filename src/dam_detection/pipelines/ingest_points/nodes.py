"""Nodes of ``ingest_points``: sources in, one validated, de-duplicated, split points table out."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dam_detection.datasets.point_sources import PointSource, PointSourceSettings
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.parameters.model import seed_or
from dam_detection.pipelines.ingest_points import spatial
from dam_detection.pipelines.ingest_points.negatives import random_points_in_regions, regions_frame
from dam_detection.pipelines.ingest_points.report import build_report, plain_counts, plot_points_map
from dam_detection.pipelines.ingest_points.settings import (
    RandomNegativeSettings,
    RegionSettings,
    SamplingSettings,
    SplitSettings,
    WaterEdgeSettings,
)
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
KIND_PRIORITY = ("dam", "reviewed", "bridge", "water_edge", "random")
#: Source names of the generated negatives.
WATER_EDGE_SOURCE = "water_edge"
RANDOM_SOURCE = "random"


def read_source(
    raw: pd.DataFrame, settings: PointSourceSettings, source: str
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Validate one configured source (see :func:`sources.standardize_source`).

    Args:
        raw: What the source's catalog entry loaded.
        settings: The source's reader options.
        source: The source name.

    Returns:
        Candidate rows and the source's summary (rows in, kept, rejected by reason).
    """
    candidates, summary = standardize_source(raw, source, settings.reader_options())
    summary["source"] = source
    if settings.attribution:  # the citation the inventory's publisher asks for
        summary["attribution"] = settings.attribution
    if summary["rejected"] or summary["filtered"]:
        logger.warning(
            "%s (%s): kept %d of %d rows; rejected %s; filtered %s; examples %s",
            source, summary["file"], summary["kept"], summary["rows_in"],
            summary["rejected"], summary["filtered"], summary["examples"],
        )  # fmt: skip
    return candidates, summary


def build_regions(regions: Sequence[Mapping[str, Any] | RegionSettings]) -> gpd.GeoDataFrame:
    """Regions of interest for negatives, from ``params:ingest_points.regions``.

    Args:
        regions: Entries with ``name`` and ``bbox`` or ``polygon`` (degrees).

    Returns:
        Polygons with a ``name`` column, EPSG:4326.
    """
    # Kedro hands a list parameter over as raw dictionaries: validate each entry here.
    checked = [RegionSettings.model_validate(region) for region in regions]
    return regions_frame([region.model_dump(exclude_none=True) for region in checked])


def sample_water_edge_points(
    regions: gpd.GeoDataFrame,
    image_source: ImageSourceSettings,
    water_edges: WaterEdgeSettings,
    seed: int,
) -> gpd.GeoDataFrame:
    """Ask the configured image source for water-edge points inside ``regions``.

    Args:
        regions: Region polygons with a ``name`` column.
        image_source: ``params:image_source`` (``kind`` plus that source's settings).
        water_edges: ``params:ingest_points.water_edges``.
        seed: ``params:seed`` (the sampling's seed unless it sets its own).

    Returns:
        Points with a ``region`` column, EPSG:4326; empty when disabled.
    """
    if not water_edges.enabled:
        return gpd.GeoDataFrame({"region": []}, geometry=gpd.points_from_xy([], []), crs=4326)
    sampling = water_edges.sampling.sampling(seed)
    points = make_image_source(image_source, seed).water_edge_points(regions, sampling)
    return points if points.crs is None else points.to_crs(4326)


def sample_random_points(
    regions: gpd.GeoDataFrame, random_negatives: RandomNegativeSettings, seed: int
) -> gpd.GeoDataFrame:
    """Seeded random points over the regions, by ground area.

    Args:
        regions: Region polygons with a ``name`` column.
        random_negatives: ``params:ingest_points.random_negatives``.
        seed: ``params:seed`` (unless ``random_negatives.seed`` is set).

    Returns:
        Points with a ``region`` column, EPSG:4326.
    """
    return random_points_in_regions(
        regions, random_negatives.count, seed_or(random_negatives.seed, seed)
    )


def combine_candidates(
    sources: Mapping[str, PointSource],
    water_edges: gpd.GeoDataFrame,
    random_points: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Read every inventory and stack its candidates with the generated negatives.

    Args:
        sources: ``point_sources``: each inventory's rows and reader options, in priority order.
        water_edges: Output of :func:`sample_water_edge_points`.
        random_points: Output of :func:`sample_random_points`.

    Returns:
        All candidates (with ``lon``, ``lat`` and a ``priority`` for duplicate merging) and
        one summary per source.
    """
    parts = [read_source(source.frame, source.settings, name) for name, source in sources.items()]
    for source, frame, kind in (
        (WATER_EDGE_SOURCE, water_edges, "water_edge"),
        (RANDOM_SOURCE, random_points, "random"),
    ):
        parts.append(read_source(frame, PointSourceSettings(reader="vector", kind=kind), source))
    kind_rank = {kind: rank for rank, kind in enumerate(KIND_PRIORITY)}
    frames = []
    for order, (frame, _) in enumerate(parts):
        # Dams first, then by kind, then in source order (a reviewed export mixes kinds).
        rank = frame["kind"].map(kind_rank).fillna(len(KIND_PRIORITY)).to_numpy(np.int64)
        priority = -frame["label"].to_numpy(np.int64) * 1_000_000 + rank * 1_000 + order
        frames.append(frame.assign(priority=priority, lon=frame.geometry.x, lat=frame.geometry.y))
    candidates = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    return candidates, [summary for _, summary in parts]


def hold_out_scan_region(
    candidates: gpd.GeoDataFrame, scan_region: gpd.GeoDataFrame, hold_out: bool
) -> gpd.GeoDataFrame:
    """The candidates training may use: without those inside the scan's region when
    ``hold_out`` (``ingest_points.hold_out_scan_region``); how many left is logged.
    """
    if not hold_out or not len(candidates):
        return candidates
    region = shapely.union_all(scan_region.to_crs("EPSG:4326").geometry.to_numpy())
    inside = shapely.contains_xy(region, candidates["lon"].to_numpy(), candidates["lat"].to_numpy())
    if inside.any():
        counts = candidates.loc[inside, "kind"].value_counts().to_dict()
        logger.info(
            "ingest_points: %d points inside the scan region held out of training %s",
            int(inside.sum()),
            plain_counts(counts),
        )
    return candidates[~inside].reset_index(drop=True)


def listed_dams(candidates: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every dam any source lists (before merging and sampling): what a scan calls known.

    Returns:
        ``point_id``, ``source``, ``name`` and EPSG:4326 points, one row per listed record (a
        dam two inventories list appears twice, each with its own source).
    """
    dams = candidates[candidates["label"] == 1]
    return gpd.GeoDataFrame(
        dams[["point_id", "source", "name"]].reset_index(drop=True),
        geometry=dams.geometry.to_numpy(),
        crs="EPSG:4326",
    )


def listed_bridges(candidates: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every bridge any source lists (before merging and sampling): a scan's detection on one is
    a structure over water that an inventory already explains, not a candidate dam.

    Returns:
        ``point_id``, ``source``, ``name`` and EPSG:4326 points, one row per listed record.
    """
    bridges = candidates[candidates["kind"] == "bridge"]
    return gpd.GeoDataFrame(
        bridges[["point_id", "source", "name"]].reset_index(drop=True),
        geometry=bridges.geometry.to_numpy(),
        crs="EPSG:4326",
    )


def select_points(
    candidates: gpd.GeoDataFrame,
    merge_distance_m: float,
    min_distance_to_dam_m: float,
    sampling: SamplingSettings,
    seed: int,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Merge duplicates, drop negatives near dams, then cap each kind to its share.

    Args:
        candidates: Output of :func:`combine_candidates`.
        merge_distance_m: ``params:ingest_points.merge_distance_m``.
        min_distance_to_dam_m: ``params:ingest_points.min_distance_to_dam_m``.
        sampling: ``params:ingest_points.sampling``.
        seed: ``params:seed`` (unless ``sampling.seed`` is set).

    Returns:
        The selected rows (:data:`CANDIDATE_COLUMNS`) and what each step removed.

    Raises:
        ValueError: If a kind has no share in ``sampling.fractions`` while capping.
    """
    vectors = spatial.unit_vectors(candidates["lon"].to_numpy(), candidates["lat"].to_numpy())
    merge_m = float(merge_distance_m)
    groups = spatial.duplicate_groups(vectors, merge_m)
    keep = spatial.first_of_groups(groups, candidates["priority"].to_numpy())
    merged = candidates.loc[~keep, "source"].value_counts().to_dict()

    dams = keep & (candidates["label"].to_numpy() == 1)
    exclusion_m = float(min_distance_to_dam_m)
    negatives = keep & ~dams
    near_dam = np.zeros(len(candidates), dtype=bool)
    near_dam[negatives] = spatial.within_distance(vectors[negatives], vectors[dams], exclusion_m)
    near = candidates.loc[near_dam, "kind"].value_counts().to_dict()
    selected = candidates.loc[keep & ~near_dam, [*CANDIDATE_COLUMNS, "lon", "lat"]]

    capped, quotas, dropped = _cap_kinds(selected, sampling, seed_or(sampling.seed, seed))
    stats = {
        "merged_duplicates": {
            "distance_m": merge_m,
            "removed": int((~keep).sum()),
            "groups_with_duplicates": int(len(np.unique(groups[~keep]))),
            "removed_by_source": plain_counts(merged),
        },
        "near_dam_dropped": {"distance_m": exclusion_m, "by_kind": plain_counts(near)},
        "capped": {"max_points": sampling.max_points, "quota": quotas, "dropped": dropped},
    }
    return capped, stats


def _cap_kinds(
    selected: gpd.GeoDataFrame, sampling: SamplingSettings, seed: int
) -> tuple[gpd.GeoDataFrame, dict[str, int], dict[str, int]]:
    max_points = sampling.max_points
    if max_points is None:
        return selected.reset_index(drop=True), {}, {}
    fractions = sampling.fractions
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(selected), dtype=bool)
    quotas = _quotas(int(max_points), fractions)
    dropped: dict[str, int] = {}
    kinds = selected["kind"].to_numpy()
    for kind in sorted(set(kinds)):
        if kind in sampling.uncapped:  # kept whole, beside max_points
            keep[kinds == kind] = True
            continue
        if kind not in fractions:
            raise ValueError(
                f"kind {kind!r} has no share in ingest_points.sampling.fractions "
                f"{dict(fractions)}: add one, list it in sampling.uncapped, or set "
                "sampling.max_points to null to keep all"
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
    selected: gpd.GeoDataFrame, split: SplitSettings, seed: int
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Split by grid blocks and number the points: the final points table.

    Args:
        selected: Output of :func:`select_points`.
        split: ``params:ingest_points.split``: ``block_size_km``, ``fractions``, ``seed``.
        seed: ``params:seed`` (unless ``split.seed`` is set).

    Returns:
        The points table (:data:`POINT_COLUMNS`, ``point_index`` 0..N-1 in ``point_id`` order)
        and split statistics, including the smallest distance between points of different
        splits in metres.
    """
    lon, lat = selected["lon"].to_numpy(), selected["lat"].to_numpy()
    fractions: dict[str, float] = {str(name): share for name, share in split.fractions.items()}
    block_km = float(split.block_size_km)
    split_seed = seed_or(split.seed, seed)
    splits = spatial.random_grid_cell_assignment(lon, lat, block_km, fractions, split_seed)
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
        "seed": split_seed,
        "smallest_cross_split_distance_m": None if smallest is None else round(smallest, 1),
    }
    return points, stats
