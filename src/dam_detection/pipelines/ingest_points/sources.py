"""Turn one raw point source into standard candidate rows, counting every rejected row.

Three readers cover the supported formats:

- ``vector``: a table with a geometry column (shapefile, GeoJSON, GeoPackage, GeoParquet);
  CRS from the file, else ``assumed_crs``, reprojected to EPSG:4326.
- ``table``: a plain table (CSV) with ``lon_column``/``lat_column`` in ``crs``.
- ``nbi_ascii``: fields cut from the FHWA NBI fixed-width file; items 16/17 are parsed from
  degrees-minutes-seconds and only bridges whose item 38 says "over a waterway" are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

#: Columns of the candidate rows every reader produces.
CANDIDATE_COLUMNS = ("point_id", "source", "kind", "label", "name", "geometry")
#: Rejected rows listed by position in the report, per source and reason.
MAX_EXAMPLES = 5
Reader = Literal["vector", "table", "nbi_ascii"]
#: A review page's decisions (``decision_column``) and the kind and label each gives a point:
#: a confirmed candidate is a dam, a rejected one a hard negative of the source's own kind
#: (``reviewed``); an ``unsure`` or blank decision is filtered out and counted.
REVIEW_DECISIONS: dict[str, tuple[str | None, int]] = {
    "confirmed": ("dam", 1),
    "rejected": (None, 0),
}


def _file_of(raw: pd.DataFrame) -> str:
    return str(raw.attrs.get("source_file", "<in-memory table>"))


def _require_column(raw: pd.DataFrame, column: str, source: str, parameter: str) -> None:
    if column not in raw.columns:
        raise KeyError(
            f"{_file_of(raw)}: column {column!r} not found (columns: {list(raw.columns)}); set "
            f"point_sources.sources.{source}.{parameter} to one of them"
        )


def _record_label(reader: str, position: int, raw: pd.DataFrame) -> str:
    if reader == "nbi_ascii":
        return f"line {int(raw['line_number'].iloc[position])}"
    if reader == "table":
        return f"line {position + 2}"  # after the header line
    return f"feature {position}"


def parse_dms(values: pd.Series, degree_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse NBI ``D..DMMSSss`` strings (seconds in hundredths) to decimal degrees.

    Args:
        values: Fixed-width strings, ``degree_digits + 6`` characters each.
        degree_digits: 2 for latitude (item 16), 3 for longitude (item 17).

    Returns:
        ``(degrees, reason)``: degrees (NaN where invalid) and, per value, ``""`` or the reason
        it was rejected (``missing_coordinates``, ``unparseable_coordinates``, ``invalid_dms``).
    """
    text = values.fillna("").astype(str).str.strip()
    width = degree_digits + 6
    digits = text.str.fullmatch(rf"\d{{{width}}}").to_numpy(dtype=bool)
    missing = (text == "").to_numpy() | (text.str.fullmatch(r"0+").to_numpy(dtype=bool))
    numbers = np.where(digits, text.where(digits, "0").to_numpy(), "0").astype(np.int64)
    degrees = numbers // 1_000_000
    minutes = (numbers // 10_000) % 100
    seconds = (numbers % 10_000) / 100.0
    in_range = (minutes < 60) & (seconds < 60)
    decimal = np.where(
        digits & in_range & ~missing, degrees + minutes / 60 + seconds / 3600, np.nan
    )
    reason = np.full(len(text), "", dtype=object)
    reason[~digits] = "unparseable_coordinates"
    reason[digits & ~in_range] = "invalid_dms"
    reason[missing] = "missing_coordinates"
    return decimal, reason


def _source_crs(raw: pd.DataFrame, source: str, settings: Mapping[str, Any]) -> CRS:
    file_crs = getattr(raw, "crs", None)
    if file_crs is not None:
        return CRS.from_user_input(file_crs)
    assumed = settings.get("assumed_crs")
    if assumed:
        return CRS.from_user_input(assumed)
    raise ValueError(
        f"{_file_of(raw)} has no CRS (no .prj file) and source {source!r} declares none: set "
        f"point_sources.sources.{source}.assumed_crs (e.g. 'EPSG:4326' for longitude/latitude)"
    )


def _coordinates(
    raw: pd.DataFrame, reader: str, source: str, settings: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Longitude, latitude (EPSG:4326), a rejection reason (``""`` if fine) per row, and
    whether the coordinates were reprojected.
    """
    rows = len(raw)
    reason = np.full(rows, "", dtype=object)
    if reader == "vector":
        if not isinstance(raw, gpd.GeoDataFrame):
            raise TypeError(
                f"{_file_of(raw)} has no geometry column: for a CSV set "
                f"point_sources.sources.{source}.reader to 'table' with lon_column/lat_column"
            )
        crs = _source_crs(raw, source, settings)
        geometry = raw.geometry.to_numpy()
        empty = shapely.is_missing(geometry) | shapely.is_empty(geometry)
        point = shapely.get_type_id(geometry) == shapely.GeometryType.POINT
        reason[~point] = "not_a_point"
        reason[empty] = "empty_geometry"
        usable = point & ~empty
        x = np.full(rows, np.nan)
        y = np.full(rows, np.nan)
        x[usable] = shapely.get_x(geometry[usable])
        y[usable] = shapely.get_y(geometry[usable])
    elif reader == "table":
        crs = CRS.from_user_input(settings.get("crs") or "EPSG:4326")
        columns = [settings.get("lon_column", "lon"), settings.get("lat_column", "lat")]
        for column, parameter in zip(columns, ("lon_column", "lat_column"), strict=True):
            _require_column(raw, column, source, parameter)
        x, y = (pd.to_numeric(raw[c], errors="coerce").to_numpy(float) for c in columns)
        blank = np.zeros(rows, dtype=bool)
        for column in columns:
            blank |= (raw[column].isna() | (raw[column].astype(str).str.strip() == "")).to_numpy()
        reason[np.isnan(x) | np.isnan(y)] = "unparseable_coordinates"
        reason[blank] = "missing_coordinates"
    elif reader == "nbi_ascii":
        crs = CRS.from_user_input(settings.get("crs") or "EPSG:4326")
        latitude, lat_reason = parse_dms(raw["latitude_dms"], degree_digits=2)
        west, lon_reason = parse_dms(raw["longitude_dms"], degree_digits=3)
        x, y = -west, latitude  # item 17 counts west longitudes as positive
        reason = np.where(lon_reason != "", lon_reason, reason)
        reason = np.where(lat_reason != "", lat_reason, reason)
    else:
        raise ValueError(
            f"unknown reader {reader!r} for source {source!r}: set "
            f"point_sources.sources.{source}.reader to 'vector', 'table' or 'nbi_ascii'"
        )
    reprojected = not crs.equals(CRS.from_epsg(4326))
    if reprojected:
        finite = np.isfinite(x) & np.isfinite(y)
        moved = gpd.GeoSeries(gpd.points_from_xy(x[finite], y[finite]), crs=crs).to_crs(4326)
        x[finite], y[finite] = moved.x.to_numpy(), moved.y.to_numpy()
    ok = reason == ""
    reason[ok & ~(np.isfinite(x) & np.isfinite(y))] = "non_finite_coordinates"
    ok = reason == ""
    reason[ok & ((np.abs(x) > 180) | (np.abs(y) > 90))] = "out_of_range"
    return x, y, reason, reprojected


def standardize_source(
    raw: pd.DataFrame, source: str, settings: Mapping[str, Any]
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Validate one source and map it to candidate rows.

    Args:
        raw: What the source's catalog dataset loaded.
        source: Source name (its key under ``point_sources.sources`` in the catalog).
        settings: That key's settings: ``reader``, ``kind``, optional ``label`` (default 1 for
            ``dam``, else 0), ``id_prefix`` (default ``source``), ``id_column`` (``null``: row
            position), ``name_column``, ``assumed_crs``; ``lon_column``/``lat_column``/``crs``
            for ``table``; ``keep_navigation_control`` (item 38 codes) for ``nbi_ascii``.

    Returns:
        ``(candidates, summary)``: rows with :data:`CANDIDATE_COLUMNS` in EPSG:4326, and a
        summary with ``file``, ``rows_in``, ``kept``, ``rejected`` and ``filtered`` counts by
        reason and up to :data:`MAX_EXAMPLES` example records per reason.

    Raises:
        KeyError: If a configured column is missing (names the file and the parameter).
        ValueError: If the CRS is unknown or the reader or kind is not configured.
    """
    reader = settings.get("reader", "vector")
    kind = settings.get("kind")
    if not kind:
        raise ValueError(
            f"set point_sources.sources.{source}.kind in the catalog (dam, bridge, ...)"
        )
    x, y, reason, reprojected = _coordinates(raw, reader, source, settings)
    filtered = np.full(len(raw), "", dtype=object)
    if reader == "nbi_ascii":
        keep_codes = [str(code) for code in settings.get("keep_navigation_control", ["0", "1"])]
        over_water = raw["navigation_control"].astype(str).isin(keep_codes).to_numpy()
        filtered[~over_water] = "not_over_waterway"
    decision_column = settings.get("decision_column")
    if decision_column is not None:  # a review page's export: decisions become labels
        _require_column(raw, decision_column, source, "decision_column")
        decisions = raw[decision_column].astype(str).str.strip().str.lower().to_numpy()
        filtered[~np.isin(decisions, list(REVIEW_DECISIONS))] = "not_decided"

    id_column = settings.get("id_column")
    if reader == "nbi_ascii" and id_column is None:
        ids = (raw["state_code"].astype(str) + "-" + raw["structure_number"].astype(str)).to_numpy()
    elif id_column is None:
        ids = np.arange(len(raw)).astype(str)
    else:
        _require_column(raw, id_column, source, "id_column")
        ids = raw[id_column].astype(str).str.strip().to_numpy()
    point_ids = pd.Series(ids, dtype=object).radd(f"{settings.get('id_prefix', source)}:")
    usable = (reason == "") & (filtered == "")
    duplicated = point_ids.where(usable).duplicated(keep="first").to_numpy() & usable
    reason[duplicated] = "duplicate_id"

    name_column = settings.get("name_column")
    if reader == "nbi_ascii" and name_column is None:
        name_column = "features_intersected"
    if name_column is not None:
        _require_column(raw, name_column, source, "name_column")
        names = raw[name_column].astype("string").str.strip()
        names = names.astype(object).where(names.notna() & (names != ""), None)
    else:
        names = pd.Series([None] * len(raw), dtype=object)

    keep = (reason == "") & (filtered == "")
    label = int(settings.get("label", 1 if kind == "dam" else 0))
    kinds = np.full(len(raw), kind, dtype=object)
    labels = np.full(len(raw), label, dtype=np.int64)
    if decision_column is not None:
        for decision, (decided_kind, decided_label) in REVIEW_DECISIONS.items():
            chosen = decisions == decision
            kinds[chosen] = decided_kind or kind
            labels[chosen] = decided_label
    candidates = gpd.GeoDataFrame(
        {
            "point_id": point_ids.to_numpy()[keep],
            "source": source,
            "kind": kinds[keep],
            "label": labels[keep],
            "name": names.to_numpy()[keep],
        },
        # Reuse the file's points where they are already in EPSG:4326 (cheaper than rebuilding).
        geometry=raw.geometry.array[keep]
        if reader == "vector" and not reprojected
        else gpd.points_from_xy(x[keep], y[keep]),
        crs="EPSG:4326",
    )
    summary = {
        "file": _file_of(raw),
        "reader": reader,
        "kind": kind,
        "rows_in": len(raw),
        "kept": int(keep.sum()),
        "rejected": _count(reason[filtered == ""]),
        "filtered": _count(filtered),
        "examples": _examples(np.where(filtered != "", "", reason), reader, raw),
    }
    return candidates, summary


def _count(reasons: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(reasons[reasons != ""].astype(str), return_counts=True)
    return {str(value): int(count) for value, count in zip(values, counts, strict=True)}


def _examples(reasons: np.ndarray, reader: str, raw: pd.DataFrame) -> dict[str, list[str]]:
    return {
        str(reason): [
            _record_label(reader, int(position), raw)
            for position in np.flatnonzero(reasons == reason)[:MAX_EXAMPLES]
        ]
        for reason in np.unique(reasons[reasons != ""].astype(str))
    }
