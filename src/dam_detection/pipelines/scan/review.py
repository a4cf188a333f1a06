"""The review page: a static HTML file that opens offline from disk.

Candidates are listed in rank order with their chip, score, coordinates and the nearest dam an
inventory lists. A reviewer confirms, rejects or marks each unsure, with buttons or keys; the
decisions live in the browser's local storage under the scan's id (they survive a reload) and
export as a GeoJSON file that ``ingest_points`` reads as a labelled source (``decision_column:
decision``): confirmed candidates become dams, rejected ones hard negatives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import geopandas as gpd
import pandas as pd

from dam_detection.pipelines.scan.known import STATUS_CANDIDATE


@dataclass
class ReviewPage:
    """The page and the chips it shows (``chips/<candidate>.png`` beside ``index.html``)."""

    html: str
    chips: dict[str, bytes] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def build_review_page(candidates: gpd.GeoDataFrame, chips: dict[str, bytes],
                      scan_id: str, title: str) -> ReviewPage:  # fmt: skip
    """The page for the candidates of one scan.

    Args:
        candidates: Sorted detections (:func:`.known.sort_detections`); only candidates show.
        chips: Chip PNG per ``detection_id``.
        scan_id: Names the scan in the browser's storage and the export's file name.
        title: Page heading.
    """
    shown = candidates[candidates["status"] == STATUS_CANDIDATE].sort_values("rank")
    rows, page_chips = [], {}
    for rank, (_, row) in enumerate(shown.iterrows(), start=1):
        candidate_id = str(row["detection_id"])
        path = f"chips/{candidate_id}.png"
        page_chips[path] = chips[candidate_id]
        rows.append({
            "candidate_id": candidate_id, "rank": rank, "score": round(float(row["score"]), 4),
            "lon": round(float(row["lon"]), 6), "lat": round(float(row["lat"]), 6),
            "tile_id": str(row["tile_id"]), "chip": path,
            "nearest_id": _plain(row["nearest_id"]),
            "nearest_inventory": _plain(row["nearest_inventory"]),
            "nearest_distance_m": _plain(row["nearest_distance_m"]),
        })  # fmt: skip
    data = json.dumps({"scan_id": scan_id, "candidates": rows})
    # Inside <script>, "</" would end the element early.
    data = data.replace("</", "<\\/")
    template = resources.files(__package__).joinpath("review_page.html").read_text("utf-8")
    html = template.replace("__TITLE__", _escape(title)).replace("__DATA__", data)
    return ReviewPage(html=html, chips=page_chips)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
