"""Known dam or candidate: each detection against every dam the inventories list.

The rule is the user's, not the evaluation's: an inventory point within its inventory's radius
of a detection (``scan.matching.radius_m``: inventories differ in precision) makes the
detection that dam; so does a listed point on or beside the water body next to the detection
(the reservoir rule: an inventory point placed on the lake, or far along the wall, still names
the dam). Each inventory point explains at most one detection (the nearest), so a second dam
beside a listed one stays a candidate. Everything else is a candidate: a dam no inventory lists,
or a false alarm, for a person to review, except a detection on a listed bridge
(:func:`mark_bridges`): a structure over water that the bridge inventory already explains.

An inventory point is evidence of a dam. A peak too weak to be a detection on its own (below
the scan's threshold, at or above ``scan.matching.confirm_threshold``) is kept by the tile only
near a listed point; here, after every detection proper has been sorted, it confirms a listed
dam still unmatched within that inventory's radius (``match_rule`` ``confirmed``) or is dropped:
it never becomes a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
from scipy.spatial import cKDTree

from dam_detection.pipelines.scan.tiling import grid_xy

STATUS_KNOWN = "known"
STATUS_CANDIDATE = "candidate"
STATUS_BRIDGE = "bridge"
#: ``match_rule`` of a listed dam confirmed by a peak below the detection threshold.
CONFIRMED = "confirmed"


def _radius(radius_m: Mapping[str, float], source: str) -> float:
    return float(radius_m.get(source, radius_m["default"]))


def sort_detections(detections: gpd.GeoDataFrame, inventory: gpd.GeoDataFrame, epsg: int,
                    radius_m: Mapping[str, float],
                    threshold: float | None = None) -> gpd.GeoDataFrame:  # fmt: skip
    """Add ``status``, ``matched_id``, ``inventory``, ``distance_m``, ``match_rule`` and the
    nearest listed dam (``nearest_id``, ``nearest_inventory``, ``nearest_distance_m``).

    Args:
        detections: Output of :func:`.merge.merge_tile_detections` (``x``, ``y`` in ``epsg``).
        inventory: Listed dams: ``point_id``, ``source``, ``name``, EPSG:4326 points.
        epsg: The scan grid's CRS.
        radius_m: Match radius per inventory (``default`` for the rest).
        threshold: The scan's detection threshold. Detections scoring below it were kept only
            to confirm listed dams (``scan.matching.confirm_threshold``): after every detection
            at or above it has been matched, each may take a listed point still unmatched
            within that point's radius (``match_rule`` ``confirmed``); the rest are dropped.
            ``None``: every detection is a detection.

    Returns:
        The detections kept, in their order (``rank`` renumbered from 1 where present).
    """
    out = detections.copy()
    n = len(out)
    status = np.full(n, STATUS_CANDIDATE, dtype=object)
    matched = np.full(n, None, dtype=object)
    source = np.full(n, None, dtype=object)
    distance = np.full(n, np.nan)
    rule = np.full(n, None, dtype=object)
    nearest_id = np.full(n, None, dtype=object)
    nearest_source = np.full(n, None, dtype=object)
    nearest_distance = np.full(n, np.nan)
    weak = np.zeros(n, bool)
    if threshold is not None and n:
        weak = out["score"].to_numpy(float) < threshold
    if n and len(inventory):
        listed_xy = grid_xy(inventory, epsg)
        found_xy = out[["x", "y"]].to_numpy(float)
        ids = inventory["point_id"].astype(str).to_numpy()
        sources = inventory["source"].astype(str).to_numpy()
        radii = np.array([_radius(radius_m, s) for s in sources])
        gap, nearest = cKDTree(listed_xy).query(found_xy)
        nearest_id, nearest_source, nearest_distance = ids[nearest], sources[nearest], gap
        used: set[int] = set()

        def match_within_radius(allowed: np.ndarray, how: str) -> None:
            # Pairs within each point's radius, closest first; each side used once.
            pairs = cKDTree(found_xy).query_ball_tree(cKDTree(listed_xy), r=float(radii.max()))
            options = [
                (float(np.hypot(*(found_xy[d] - listed_xy[p]))), d, p)
                for d, points in enumerate(pairs)
                if allowed[d]
                for p in points
            ]
            for dist, d, p in sorted(options):
                if dist > radii[p] or status[d] == STATUS_KNOWN or p in used:
                    continue
                used.add(p)
                status[d], matched[d], source[d], distance[d], rule[d] = (
                    STATUS_KNOWN, ids[p], sources[p], dist, how)  # fmt: skip

        match_within_radius(~weak, "radius")
        by_id = {point_id: i for i, point_id in enumerate(ids)}
        for d, reservoir_ids in enumerate(out["reservoir_ids"]):
            if status[d] == STATUS_KNOWN or weak[d]:
                continue
            # The nearest listed point on this detection's water body not yet used.
            options = [
                by_id[i] for i in (reservoir_ids or ()) if i in by_id and by_id[i] not in used
            ]
            if options:
                p = min(options, key=lambda q: np.hypot(*(found_xy[d] - listed_xy[q])))
                used.add(p)
                status[d], matched[d], source[d], rule[d] = (
                    STATUS_KNOWN,
                    ids[p],
                    sources[p],
                    "reservoir",
                )
                distance[d] = float(np.hypot(*(found_xy[d] - listed_xy[p])))
        match_within_radius(weak, CONFIRMED)
    out = out.assign(
        status=status, matched_id=matched, inventory=source, distance_m=np.round(distance, 1),
        match_rule=rule, nearest_id=nearest_id, nearest_inventory=nearest_source,
        nearest_distance_m=np.round(nearest_distance, 1),
    )  # fmt: skip
    # A weak peak that confirmed nothing was never a detection.
    out = out[~weak | (status == STATUS_KNOWN)].reset_index(drop=True)
    if "rank" in out:
        out = out.assign(rank=np.arange(1, len(out) + 1))
    return out


def mark_bridges(sorted_detections: gpd.GeoDataFrame, bridges: gpd.GeoDataFrame, epsg: int,
                 radius_m: float | None) -> gpd.GeoDataFrame:  # fmt: skip
    """Candidates within ``radius_m`` of a listed bridge become ``bridge``.

    A deck across a reservoir or a river looks much like a wall to the FCN (four of six chips
    looked at among a default run's twelve highest-scoring detections far from any dam were such
    crossings); a user who has a bridge inventory does not review those.
    Known dams stay known: a dam beside a bridge is still the dam its inventory lists.

    Args:
        sorted_detections: Output of :func:`sort_detections`.
        bridges: Listed bridges: ``point_id``, ``source``, EPSG:4326 points.
        epsg: The scan grid's CRS.
        radius_m: Match radius; ``None`` leaves every candidate a candidate.

    Returns:
        The detections, bridge ones with ``matched_id``, ``inventory``, ``distance_m`` of the
        nearest listed bridge and ``match_rule`` ``bridge``.
    """
    out = sorted_detections.copy()
    is_candidate = (out["status"] == STATUS_CANDIDATE).to_numpy()
    if radius_m is None or not len(bridges) or not is_candidate.any():
        return out
    gap, nearest = cKDTree(grid_xy(bridges, epsg)).query(out[["x", "y"]].to_numpy(float))
    on_bridge = np.flatnonzero(is_candidate & (gap <= radius_m))
    ids = bridges["point_id"].astype(str).to_numpy()
    sources = bridges["source"].astype(str).to_numpy()
    columns = ["status", "matched_id", "inventory", "distance_m", "match_rule"]
    for d in on_bridge:
        values = [STATUS_BRIDGE, ids[nearest[d]], sources[nearest[d]], round(float(gap[d]), 1),
                  "bridge"]  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            out.iloc[d, out.columns.get_loc(column)] = value
    return out
