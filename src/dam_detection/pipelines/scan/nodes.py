"""Nodes of the ``scan`` pipeline: plan the tiles, segment them on Dask, merge and sort the
detections, write the candidates, the review page and the metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dam_detection.detection.settings import DetectionSettings
from dam_detection.detection.threshold import validation_threshold
from dam_detection.image_sources.base import CompositeWindow, make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.model_metadata import check_bands
from dam_detection.pipelines.gee_export.nodes import composite_window
from dam_detection.pipelines.gee_export.settings import CompositeWindowSettings
from dam_detection.pipelines.scan.cluster import dask_client, run_tasks
from dam_detection.pipelines.scan.exported_imagery import (
    ExportedBlockReader,
    export_tile_imagery,
)
from dam_detection.pipelines.scan.known import (
    CONFIRMED,
    STATUS_BRIDGE,
    STATUS_CANDIDATE,
    STATUS_KNOWN,
    mark_bridges,
    sort_detections,
)
from dam_detection.pipelines.scan.merge import merge_tile_detections
from dam_detection.pipelines.scan.metrics import evaluate_scan
from dam_detection.pipelines.scan.review import ReviewPage, build_review_page
from dam_detection.pipelines.scan.settings import ScanSettings
from dam_detection.pipelines.scan.store import TileStore
from dam_detection.pipelines.scan.tile_scan import ListedPoints, ModelPayload, TileJob, scan_tile
from dam_detection.pipelines.scan.tiling import (
    PIXEL_M,
    ScanTile,
    grid_xy,
    plan_tiles,
    tiles_frame,
    tiles_from_frame,
)
from dam_detection.pipelines.segment.blocks import halo_for

logger = logging.getLogger(__name__)

#: Columns of the candidates files, in order.
CANDIDATE_COLUMNS = (
    "id", "rank", "lon", "lat", "score", "status", "matched_id", "inventory", "distance_m",
    "match_rule", "nearest_id", "nearest_inventory", "nearest_distance_m", "tile_id",
)  # fmt: skip


def plan_scan_tiles(scan_region: gpd.GeoDataFrame, params: ScanSettings) -> gpd.GeoDataFrame:
    """The tiles whose core meets the region (``scan.tiles``), with their outlines."""
    region = shapely.union_all(scan_region.to_crs("EPSG:4326").geometry.to_numpy())
    tiles = plan_tiles(region, params.region.name, params.tiles.size_px,
                       params.tiles.overlap_px, params.tiles.epsg)  # fmt: skip
    logger.info("scan: %s in %d tiles of %d px", params.region.name, len(tiles),
                params.tiles.size_px)  # fmt: skip
    return tiles_frame(tiles)


def scan_threshold(params: ScanSettings, train_metrics: Mapping[str, Any],
                   detection: DetectionSettings) -> float:  # fmt: skip
    """The peak threshold: from validation patches (``train_metrics``) or the parameters."""
    if params.threshold != "validation":
        return float(params.threshold)
    return validation_threshold(train_metrics, detection, "scan.threshold")


def confirm_threshold(params: ScanSettings, train_metrics: Mapping[str, Any],
                      detection: DetectionSettings, threshold: float) -> float | None:  # fmt: skip
    """The score at which a peak confirms a listed dam (``scan.matching.confirm_threshold``),
    or ``None`` where it would not be below ``threshold``.
    """
    setting = params.matching.confirm_threshold
    if setting is None:
        return None
    if setting == "validation":
        setting = validation_threshold(
            train_metrics, detection, "scan.matching.confirm_threshold", "confirmation"
        )
    return float(setting) if float(setting) < threshold else None


def _listed_near(tile: Any, inventory: gpd.GeoDataFrame, xy: np.ndarray,
                 reach_m: float) -> ListedPoints:  # fmt: skip
    if not len(inventory):
        return ListedPoints()
    west, south, east, north = tile.core_bounds()
    margin = max((tile.overlap_px + 64) * PIXEL_M, reach_m)
    near = (xy[:, 0] > west - margin) & (xy[:, 0] < east + margin)
    near &= (xy[:, 1] > south - margin) & (xy[:, 1] < north + margin)
    ids = inventory["point_id"].astype(str).to_numpy()[near]
    return ListedPoints(tuple(ids), tuple(xy[near, 0].tolist()), tuple(xy[near, 1].tolist()))


def scan_tiles_on_dask(
    scan_tiles: gpd.GeoDataFrame,
    scan_store: TileStore,
    fcn_model: Any,
    fcn_metadata: Mapping[str, Any],
    band_stats: Mapping[str, Any],
    inventory_dams: gpd.GeoDataFrame,
    train_metrics: Mapping[str, Any],
    image_source: ImageSourceSettings,
    seed: int,
    composite: CompositeWindowSettings,
    detection: DetectionSettings,
    params: ScanSettings,
) -> dict[str, Any]:
    """Segment every tile not finished yet on Dask; each writes its results to the store.

    The workers read the planet's blocks directly; with Earth Engine every tile still to scan
    is exported first, in this process, and read from its GeoTIFF (:mod:`.exported_imagery`).

    Returns:
        The run's account: tiles done now and skipped (finished by an earlier run with the same
        fingerprint), each tile's summary, workers, wall time, the threshold.
    """
    source = make_image_source(image_source, seed)
    names = check_bands(fcn_metadata, [], "scan")
    window = composite_window(composite)
    reader = _block_reader(source, window, names)
    threshold = scan_threshold(params, train_metrics, detection)
    confirm = confirm_threshold(params, train_metrics, detection, threshold)
    confirm_reach_m = max(params.matching.radius_m.values())
    model = ModelPayload.of(fcn_model)
    halo = halo_for(int(fcn_metadata["receptive_field_px"]))
    reach_px = params.matching.reservoir_reach_m / PIXEL_M
    settings = {
        "model": model.key, "reader": repr(_without_cache(reader)), "bands": names,
        "stats": band_stats["bands"], "halo": halo, "block_px": params.block_px,
        "blocks_per_batch": params.blocks_per_batch,
        "threshold": threshold, "confirm_threshold": confirm, "confirm_reach_m": confirm_reach_m,
        "min_distance_px": detection.min_distance_px,
        "smoothing_px": detection.smoothing_px, "views": detection.views,
        "water_ndwi": params.matching.water_ndwi, "reach_px": reach_px,
        "chips": params.chips.model_dump(),
    }  # fmt: skip
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    job = TileJob(
        reader=reader, bands=tuple(names), band_stats=band_stats["bands"], model=model,
        halo=halo, block_px=params.block_px, threshold=threshold,
        min_distance_px=float(detection.min_distance_px),
        smoothing_px=float(detection.smoothing_px), water_ndwi=params.matching.water_ndwi,
        reservoir_reach_px=reach_px, chip_px=params.chips.size_px, chip_scale=params.chips.scale,
        threads=params.cluster.threads_per_worker, blocks_per_batch=params.blocks_per_batch,
        views=detection.views, confirm_threshold=confirm,
        confirm_reach_px=confirm_reach_m / PIXEL_M, fingerprint=fingerprint,
    )  # fmt: skip
    tiles = tiles_from_frame(scan_tiles)
    todo = [tile for tile in tiles if not scan_store.finished(tile.tile_id, fingerprint)]
    logger.info("scan: %d tiles to segment, %d finished by an earlier run", len(todo),
                len(tiles) - len(todo))  # fmt: skip
    if isinstance(reader, ExportedBlockReader):
        # Exported (Earth Engine) imagery is fetched here, in the process holding the session.
        reader = export_tile_imagery(source, reader, todo, halo, scan_store.imagery_path,
                                     window, seed)  # fmt: skip
        job = replace(job, reader=reader)
    if hasattr(reader, "compose_ahead") and todo:
        # A planet tile beyond the published regions costs a Dask worker about twice what it
        # costs the rendering pool, with the other worker predicting beside it
        # (benchmarks/results_scan.md): compose them all before the workers start.
        started = time.perf_counter()
        windows = [(t.window_col - halo, t.window_top + halo, t.window_px + 2 * halo)
                   for t in todo]  # fmt: skip
        composed = reader.compose_ahead(todo[0].epsg, windows, int(getattr(source, "workers", 1)))
        logger.info("scan: %d planet tiles composed ahead in %.1f s", composed,
                    time.perf_counter() - started)  # fmt: skip
    xy = grid_xy(inventory_dams, tiles[0].epsg if tiles else 4326)
    tasks = [(t.tile_id, (t, _listed_near(t, inventory_dams, xy, confirm_reach_m), scan_store))
             for t in todo]  # fmt: skip
    start = time.perf_counter()
    workers = 0
    summaries: list[dict[str, Any]] = []
    if tasks:
        with dask_client(params.cluster) as client:
            workers = len(client.scheduler_info()["workers"])
            summaries = run_tasks(client, scan_tile, tasks, job, retries=params.cluster.retries)
    return {
        "fingerprint": fingerprint,
        "threshold": threshold,
        "confirm_threshold": confirm,
        "tiles": len(tiles),
        "tiles_scanned": len(todo),
        "tiles_skipped": len(tiles) - len(todo),
        "workers": workers,
        "threads_per_worker": params.cluster.threads_per_worker,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "per_tile": summaries,
    }


def _block_reader(source: Any, window: CompositeWindow, names: list[str]) -> Any:
    """How the scan's workers read imagery: the planet renders blocks itself; an exporting
    source (Earth Engine) has each tile exported first (:mod:`.exported_imagery`).
    """
    if hasattr(source, "block_reader"):
        return source.block_reader(window, names)
    if hasattr(source, "grid_export"):
        settings = getattr(source, "settings", None)
        decides = getattr(settings, "composite", settings)
        return ExportedBlockReader(f"{source!r} {window!r} {decides!r}", tuple(names))
    raise NotImplementedError(
        f"image source {source.name!r} can neither render blocks nor export tiles: a region "
        "scan needs one or the other"
    )


def _without_cache(reader: Any) -> Any:
    # The tile cache's folder changes where tiles are kept, never their pixels.
    planet = getattr(reader, "planet", None)
    if planet is None:
        return reader
    return replace(reader, planet=replace(planet, cache_dir=None))


def collect_detections(
    scan_tiles: gpd.GeoDataFrame,
    scan_store: TileStore,
    scan_run: Mapping[str, Any],
    scan_region: gpd.GeoDataFrame,
    detection: DetectionSettings,
) -> gpd.GeoDataFrame:
    """Every finished tile's detections inside the region, merged across seams; the region's
    heatmap VRT is written beside the tiles.

    Raises:
        RuntimeError: If a tile has not been finished with this scan's fingerprint.
    """
    tiles = tiles_from_frame(scan_tiles)
    missing = [
        t.tile_id for t in tiles if not scan_store.finished(t.tile_id, scan_run["fingerprint"])
    ]
    if missing:
        raise RuntimeError(f"scan tiles {missing[:5]} are not finished: re-run the scan")
    merged = detections_in_region(tiles, scan_store, scan_region, detection)
    vrt = scan_store.write_vrt(tiles)
    logger.info("scan: %d detections in the region; heatmap %s", len(merged), vrt)
    return merged


def detections_in_region(tiles: list[ScanTile], scan_store: TileStore,
                         scan_region: gpd.GeoDataFrame,
                         detection: DetectionSettings) -> gpd.GeoDataFrame:  # fmt: skip
    """The stored detections of ``tiles`` merged across seams, those inside the region ranked
    by score (``rank`` 1 first), with the grid's ``epsg``.
    """
    epsg = tiles[0].epsg
    merged = merge_tile_detections(
        [scan_store.detections(t.tile_id) for t in tiles], epsg, float(detection.min_distance_px)
    )
    region = shapely.union_all(scan_region.to_crs("EPSG:4326").geometry.to_numpy())
    inside = shapely.contains_xy(region, merged["lon"].to_numpy(), merged["lat"].to_numpy())
    merged = merged[inside].reset_index(drop=True).assign(rank=np.arange(1, int(inside.sum()) + 1))
    return merged.assign(epsg=epsg)


def sort_known_and_candidates(
    detections: gpd.GeoDataFrame,
    inventory_dams: gpd.GeoDataFrame,
    inventory_bridges: gpd.GeoDataFrame,
    scan_run: Mapping[str, Any],
    params: ScanSettings,
) -> gpd.GeoDataFrame:
    """Each detection ``known`` (an inventory lists the dam), ``bridge`` (on a listed bridge)
    or a ``candidate``; peaks below the threshold confirm listed dams or go (:mod:`.known`).
    """
    epsg = int(detections["epsg"].iloc[0]) if len(detections) else 4326
    matching = params.matching
    dams = sort_detections(detections, inventory_dams, epsg, matching.radius_m,
                           float(scan_run["threshold"]))  # fmt: skip
    return mark_bridges(dams, inventory_bridges, epsg, matching.bridge_radius_m)


def candidate_tables(
    sorted_detections: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """The detections as the users' files: GeoPackage, GeoJSON and CSV (same rows)."""
    table = sorted_detections.rename(columns={"detection_id": "id"})
    table = gpd.GeoDataFrame(table[list(CANDIDATE_COLUMNS)], geometry=table.geometry,
                             crs="EPSG:4326")  # fmt: skip
    return table, table.copy(), pd.DataFrame(table.drop(columns="geometry"))


def review_page(sorted_detections: gpd.GeoDataFrame, scan_store: TileStore,
                scan_run: Mapping[str, Any], params: ScanSettings) -> ReviewPage:  # fmt: skip
    """The static review page of the candidates (:mod:`.review`)."""
    candidates = sorted_detections[sorted_detections["status"] == STATUS_CANDIDATE]
    chips = {str(i): scan_store.chip(str(i)) for i in candidates["detection_id"]}
    scan_id = f"{params.region.name}-{scan_run['fingerprint'][:8]}"
    return build_review_page(sorted_detections, chips, scan_id, params.region.name)


def _tile_seconds(per_tile: list[dict[str, Any]]) -> dict[str, float] | None:
    """Where the tiles' time went, summed over the tiles this run scanned: reading the image,
    predicting (every view), the rest (peaks, chips, writing), and the slowest tile. Their sum
    over the workers against ``wall_seconds`` is what starting the cluster and the models cost.
    """
    if not per_tile:
        return None
    total = sum(t["seconds"] for t in per_tile)
    reading = sum(t["read_seconds"] for t in per_tile)
    predicting = sum(t["predict_seconds"] for t in per_tile)
    return {
        "total": round(total, 2),
        "reading": round(reading, 2),
        "predicting": round(predicting, 2),
        "other": round(max(total - reading - predicting, 0.0), 2),
        "slowest_tile": round(max(t["seconds"] for t in per_tile), 2),
    }


def evaluate(sorted_detections: gpd.GeoDataFrame, planet_truth: gpd.GeoDataFrame,
             planet_lookalikes: gpd.GeoDataFrame, scan_region: gpd.GeoDataFrame,
             scan_run: Mapping[str, Any], detection: DetectionSettings, params: ScanSettings,
             seed: int) -> dict[str, Any]:  # fmt: skip
    """``scan_metrics.json``: the run's account and, where the source knows its dams, the scan
    against them (:mod:`.metrics`).
    """
    per_tile = scan_run["per_tile"]
    account = {
        "region": params.region.name,
        "threshold": scan_run["threshold"],
        "confirm_threshold": scan_run.get("confirm_threshold"),
        # What made the heatmaps the threshold cut: runs are compared knowing these.
        "views": detection.views,
        "smoothing_px": detection.smoothing_px,
        "threshold_beta": detection.threshold_beta,
        "tiles": scan_run["tiles"],
        "tiles_scanned": scan_run["tiles_scanned"],
        "tiles_skipped": scan_run["tiles_skipped"],
        "workers": scan_run["workers"],
        "threads_per_worker": scan_run["threads_per_worker"],
        "wall_seconds": scan_run["wall_seconds"],
        "area_km2": round(
            float(scan_region.to_crs(scan_region.estimate_utm_crs()).area.sum()) / 1e6, 1
        ),  # fmt: skip
        "computed_over_output_area": (
            round(
                sum(t["computed_px"] for t in per_tile) / sum(t["output_px"] for t in per_tile), 3
            )
            if per_tile
            else None
        ),
        "peak_rss_mb_per_worker": max((t["peak_rss_mb"] for t in per_tile), default=None),
        "tile_seconds": _tile_seconds(per_tile),
        "detections": int(len(sorted_detections)),
        "known": int((sorted_detections["status"] == STATUS_KNOWN).sum()),
        "confirmed": int((sorted_detections["match_rule"] == CONFIRMED).sum()),
        "on_listed_bridges": int((sorted_detections["status"] == STATUS_BRIDGE).sum()),
        "candidates": int((sorted_detections["status"] == STATUS_CANDIDATE).sum()),
    }
    if planet_truth is None or not len(planet_truth):
        note = "the image source publishes no truth for this region"
        return {**account, "evaluation": None, "evaluation_note": note}
    truth = truth_in_region(planet_truth, scan_region)
    epsg = int(sorted_detections["epsg"].iloc[0]) if len(sorted_detections) else 4326
    metrics = evaluate_scan(
        sorted_detections, truth, epsg, float(detection.tolerance_m),
        top_k=params.evaluation.top_k, calibration_bins=params.evaluation.calibration_bins,
        bootstrap=params.evaluation.bootstrap, seed=seed, lookalikes=planet_lookalikes,
    )  # fmt: skip
    return {**account, "evaluation": metrics}


def truth_in_region(planet_truth: gpd.GeoDataFrame,
                    scan_region: gpd.GeoDataFrame) -> gpd.GeoDataFrame:  # fmt: skip
    """The planet's dams inside the region, each ``listed`` where some inventory lists it."""
    region = shapely.union_all(scan_region.to_crs("EPSG:4326").geometry.to_numpy())
    inside = shapely.contains_xy(region, planet_truth.geometry.x.to_numpy(),
                                 planet_truth.geometry.y.to_numpy())  # fmt: skip
    truth = planet_truth[inside]
    return truth.assign(listed=truth["listed_national"].astype(bool)
                        | truth["listed_large"].astype(bool))  # fmt: skip


def summarize(scan_metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The run's last words: dams found, candidates, where the review page is."""
    lines = [
        f"Scan of {scan_metrics['region']} ({scan_metrics['area_km2']} km², "
        f"{scan_metrics['tiles']} tiles, {scan_metrics['workers']} Dask workers, "
        f"{scan_metrics['wall_seconds']} s): {scan_metrics['detections']} detections, "
        f"{scan_metrics['known']} known to an inventory ("
        f"{scan_metrics.get('confirmed', 0)} of them confirmed by a weaker peak), "
        f"{scan_metrics.get('on_listed_bridges', 0)} on listed bridges, "
        f"{scan_metrics['candidates']} candidates.",
    ]
    evaluation = scan_metrics.get("evaluation")
    if evaluation:
        lines.append(
            f"Against the planet's truth at {evaluation['tolerance_m']:g} m: discovery recall "
            f"{evaluation['discovery_recall']} ({evaluation['discoveries']} of "
            f"{evaluation['unlisted_dams']} unlisted dams), candidate precision "
            f"{evaluation['candidate_precision']}, listed recall {evaluation['listed_recall']} "
            f"({evaluation.get('listed_recall_at_threshold')} without confirmations)."
        )
    # The run's last log line adds where the catalog put the page (hooks.RunSummaryHooks).
    lines.append("Review the candidates: open the review page (catalog entry scan_review).")
    return {
        "text": "\n".join(lines),
        **{k: scan_metrics[k] for k in ("detections", "known", "candidates")},
    }
