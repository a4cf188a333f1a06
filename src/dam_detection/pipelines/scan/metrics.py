"""How well a scan did, against the truth of a simulated planet.

Three questions, at the shared ``detection.tolerance_m``:

- discovery recall: of the dams no inventory lists, the share a *candidate* found (a detection
  called known does not count: the reviewer never sees it);
- candidate precision: of the candidates, the share that are dams (listed or not: both are
  real, though only the unlisted ones are discoveries);
- listed recall: of the listed dams, the share any detection found, confirmations of listed
  dams by weaker peaks included (``scan.matching.confirm_threshold``); without them, at the
  detection threshold alone, as ``listed_recall_at_threshold``.

Each is a point estimate with a 95% bootstrap interval (resampling the dams, or the candidates).
For the reviewer: precision of the first k candidates, reviews per real discovery, and a
calibration table of scores. Where the truth names each dam's kind (across a valley, farm pond,
weir) the recalls are also given per kind; where the planet's look-alikes are known, the
candidates that are no dam are counted by the look-alike they lie on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np

from dam_detection.detection.matching import match_points
from dam_detection.pipelines.scan.known import (
    CONFIRMED,
    STATUS_BRIDGE,
    STATUS_CANDIDATE,
    STATUS_KNOWN,
)
from dam_detection.pipelines.scan.tiling import grid_xy


def _share(hits: np.ndarray) -> float | None:
    return round(float(hits.mean()), 4) if len(hits) else None


def _interval(hits: np.ndarray, samples: int, rng: np.random.Generator) -> list[float] | None:
    """95% bootstrap interval of the mean of 0/1 outcomes."""
    if not len(hits) or samples == 0:
        return None
    means = rng.choice(hits, size=(samples, len(hits)), replace=True).mean(axis=1)
    return [round(float(v), 4) for v in np.percentile(means, [2.5, 97.5])]


def evaluate_scan(sorted_detections: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, epsg: int,
                  tolerance_m: float, *, top_k: Sequence[int], calibration_bins: int,
                  bootstrap: int, seed: int,
                  lookalikes: gpd.GeoDataFrame | None = None) -> dict[str, Any]:  # fmt: skip
    """The scan's metrics (see the module docstring).

    Args:
        sorted_detections: Output of :func:`.known.sort_detections`.
        truth: Every dam in the scanned area: EPSG:4326 wall points with ``dam_id``,
            ``listed`` (bool: some inventory lists it) and optionally ``kind``.
        lookalikes: What looks like a dam and is not (``kind`` and a point), or ``None``.
        epsg: The scan grid's CRS (metres).
        tolerance_m: A detection this close finds a dam.
        top_k: Ranks at which the reviewer's precision is reported.
        calibration_bins: Score bins of the calibration table.
        bootstrap: Resamples per interval.
        seed: Bootstrap seed.
    """
    rng = np.random.default_rng(seed)
    found_xy, truth_xy = grid_xy(sorted_detections, epsg), grid_xy(truth, epsg)
    listed = truth["listed"].to_numpy(bool) if len(truth) else np.zeros(0, bool)
    is_candidate = (sorted_detections["status"] == STATUS_CANDIDATE).to_numpy()
    # One matching of every detection to every dam: a detection finds one dam at most.
    pairs = match_points(truth_xy, found_xy, tolerance_m)
    dam_of = np.full(len(found_xy), -1)
    dam_of[pairs[:, 1]] = pairs[:, 0]
    found_by = np.full(len(truth_xy), -1)
    found_by[pairs[:, 0]] = pairs[:, 1]
    found_any = found_by >= 0
    found_by_candidate = found_any & is_candidate[np.maximum(found_by, 0)]
    candidate_is_dam = dam_of[is_candidate] >= 0
    candidate_is_discovery = candidate_is_dam & ~listed[np.maximum(dam_of[is_candidate], 0)]
    discovery = found_by_candidate[~listed]
    listed_found = found_any[listed]
    # The same question for the detections proper: without the confirming peaks, matched anew.
    confirmed = np.zeros(len(found_xy), bool)
    if "match_rule" in sorted_detections:
        confirmed = (sorted_detections["match_rule"] == CONFIRMED).to_numpy(bool)
    alone = np.zeros(len(truth_xy), bool)
    alone[match_points(truth_xy, found_xy[~confirmed], tolerance_m)[:, 0]] = True
    listed_found_alone = alone[listed]
    scores = sorted_detections["score"].to_numpy(float)[is_candidate]
    order = np.argsort(-scores, kind="stable")
    ranked_dam, ranked_discovery = candidate_is_dam[order], candidate_is_discovery[order]
    known = (sorted_detections["status"] == STATUS_KNOWN).to_numpy()
    known_is_unlisted = known & (dam_of >= 0) & ~listed[np.maximum(dam_of, 0)]
    # A detection on a listed bridge is never reviewed: one that is a dam is a dam lost.
    on_bridge = (sorted_detections["status"] == STATUS_BRIDGE).to_numpy()
    discoveries = int(candidate_is_discovery.sum())
    edges = np.linspace(float(scores.min()) if len(scores) else 0.0, 1.0, calibration_bins + 1)
    calibration = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (scores >= low) & ((scores < high) | (high == 1.0))
        calibration.append({
            "score_from": round(float(low), 3), "score_to": round(float(high), 3),
            "candidates": int(inside.sum()), "dams": int(candidate_is_dam[inside].sum()),
            "share_dams": _share(candidate_is_dam[inside]),
        })  # fmt: skip
    return {
        "tolerance_m": float(tolerance_m),
        "dams": int(len(truth_xy)),
        "unlisted_dams": int((~listed).sum()),
        "listed_dams": int(listed.sum()),
        "detections": int(len(found_xy)),
        "known": int(known.sum()),
        "candidates": int(is_candidate.sum()),
        "on_listed_bridges": int(on_bridge.sum()),
        "on_listed_bridges_that_are_dams": int((on_bridge & (dam_of >= 0)).sum()),
        "discovery_recall": _share(discovery),
        "discovery_recall_95": _interval(discovery, bootstrap, rng),
        "candidate_precision": _share(candidate_is_dam),
        "candidate_precision_95": _interval(candidate_is_dam, bootstrap, rng),
        "listed_recall": _share(listed_found),
        "listed_recall_95": _interval(listed_found, bootstrap, rng),
        "listed_recall_at_threshold": _share(listed_found_alone),
        "confirmed": int(confirmed.sum()),
        "confirmed_that_are_dams": int((confirmed & (dam_of >= 0)).sum()),
        "discoveries": discoveries,
        "candidates_that_are_listed_dams": int((candidate_is_dam & ~candidate_is_discovery).sum()),
        "known_that_are_unlisted_dams": int(known_is_unlisted.sum()),
        "reviews_per_discovery": (
            round(float(is_candidate.sum()) / discoveries, 2) if discoveries else None
        ),
        "top_k_precision": {str(k): _share(ranked_dam[:k]) for k in top_k},
        "top_k_discoveries": {str(k): int(ranked_discovery[:k].sum()) for k in top_k},
        "calibration": calibration,
        "by_kind": _by_kind(truth, listed, found_any, found_by_candidate),
        "false_candidates_on": _false_candidates_on(
            found_xy[is_candidate][~candidate_is_dam], lookalikes, epsg, tolerance_m
        ),
    }


def _by_kind(truth: gpd.GeoDataFrame, listed: np.ndarray, found_any: np.ndarray,
             found_by_candidate: np.ndarray) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per kind of dam: how many, and the listed and discovery recalls."""
    if "kind" not in truth.columns or not len(truth):
        return {}
    kinds = truth["kind"].astype(str).to_numpy()
    return {
        kind: {
            "dams": int((kinds == kind).sum()),
            "listed_recall": _share(found_any[(kinds == kind) & listed]),
            "discovery_recall": _share(found_by_candidate[(kinds == kind) & ~listed]),
        }
        for kind in sorted(set(kinds))
    }


def _false_candidates_on(xy: np.ndarray, lookalikes: gpd.GeoDataFrame | None, epsg: int,
                         tolerance_m: float) -> dict[str, int]:  # fmt: skip
    """Candidates that are no dam, by the nearest look-alike within ``tolerance_m``
    (``elsewhere``: none that close).
    """
    if lookalikes is None or not len(xy):
        return {}
    counts: dict[str, int] = {"elsewhere": 0}
    if not len(lookalikes):
        counts["elsewhere"] = len(xy)
        return counts
    near_xy = grid_xy(lookalikes, epsg)
    kinds = lookalikes["kind"].astype(str).to_numpy()
    distance = np.hypot(xy[:, None, 0] - near_xy[None, :, 0], xy[:, None, 1] - near_xy[None, :, 1])
    nearest = distance.argmin(axis=1)
    for row, column in enumerate(nearest):
        kind = kinds[column] if distance[row, column] <= tolerance_m else "elsewhere"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
