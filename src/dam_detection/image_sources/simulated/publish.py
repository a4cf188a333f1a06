"""Inventories the planet publishes, as incomplete and imprecise as real ones.

Real dam inventories miss dams (the ones this product exists to find), place points beside
the wall (on the reservoir, at a gauge, at a county centroid), repeat records and spell names
in every script. The planet publishes three files in the formats users really have, which
``ingest_points`` reads with its ordinary readers:

* a national dam inventory (GeoPackage): a share of the planet's dams, with position errors,
  non-ASCII names and a few duplicate records;
* a GRanD-style CSV of the large reservoirs (``GRAND_ID``, ``DAM_NAME``, ``LONG_DD``,
  ``LAT_DD``, ...), listed independently of the national inventory, coordinates rounded;
* an FHWA NBI fixed-width file of the bridges over the planet's rivers.

The planet's truth (every dam, whether each inventory lists it, where the listed point lies) is
published separately for evaluation only; nothing a model trains on reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from dam_detection.datasets.nbi_ascii import NBI_FIELDS, NBI_RECORD_LENGTH
from dam_detection.image_sources.simulated.world import (
    DamRecord,
    Planet,
    prefetch_features,
    tile_features,
    tiles_covering,
    to_zone,
    zone_epsg,
)


@dataclass(frozen=True)
class PositionErrors:
    """How far a listed point lies from its dam's wall.

    Attributes:
        sigma_m: Most points: a 2-D normal offset of this standard deviation per axis
            (about 95% within 2.45 sigma).
        tail_share: Share of points placed 2.5 sigma to ``tail_max_m`` away.
        tail_max_m: Farthest offset.
        on_reservoir_share: Share of points placed inside the reservoir instead.
    """

    sigma_m: float = 50.0
    tail_share: float = 0.08
    tail_max_m: float = 500.0
    on_reservoir_share: float = 0.05


@dataclass(frozen=True)
class InventoryRules:
    """What the planet's inventories list.

    Attributes:
        listed_share: Share of dams in the national inventory.
        duplicate_share: Share of listed dams recorded twice (under another id, a few tens of
            metres apart).
        large_reservoir_km2: Reservoirs at least this large are candidates for the GRanD-style
            file.
        large_listed_share: Share of those candidates it lists.
        bridges_listed_share: Share of bridges in the NBI file.
        errors: Position errors of the national inventory.
    """

    listed_share: float = 0.7
    duplicate_share: float = 0.02
    large_reservoir_km2: float = 2.0
    large_listed_share: float = 0.9
    bridges_listed_share: float = 0.9
    errors: PositionErrors = PositionErrors()


@dataclass(frozen=True)
class Publication:
    """The planet's published inventories and its truth.

    Attributes:
        national_dams: Points with ``DAM_ID``, ``DAM_NAME``, ``DAM_TYPE``, ``YEAR_COMPL``.
        large_dams: GRanD-style table (no geometry; ``LONG_DD``/``LAT_DD``).
        bridges_nbi: NBI records, one 432-character line each.
        truth: Every dam in the extent: ``dam_id``, wall point, ``kind`` (``reservoir``,
            ``farm_pond``, ``weir``), ``material``, ``reservoir_km2``, ``listed_national``,
            ``listed_large``, ``listed_id``, ``listed_offset_m``.
        lookalikes: What looks like a dam and is not, for evaluation and the gallery:
            ``kind`` (``bridge``, ``levee``, ``lake_outlet``, ``quarry``, ``tailings``) and a
            point.
    """

    national_dams: gpd.GeoDataFrame
    large_dams: pd.DataFrame
    bridges_nbi: str
    truth: gpd.GeoDataFrame
    lookalikes: gpd.GeoDataFrame


def _rng(planet: Planet, *salt: int) -> np.random.Generator:
    return np.random.default_rng([planet.seed & 0xFFFFFFFF, 0x1D, *salt])


def planet_structures(
    planet: Planet, area: shapely.Geometry, workers: int = 1
) -> tuple[list[tuple[DamRecord, int]], np.ndarray, gpd.GeoDataFrame]:
    """Every dam (with its zone), every bridge (lon, lat) and every other look-alike (a
    ``kind`` and a point, bridges included) inside ``area`` (degrees).
    """
    west, south, east, north = area.bounds
    box = area
    dams: list[tuple[DamRecord, int]] = []
    bridges: list[np.ndarray] = []
    others: list[tuple[str, float, float]] = []
    zones = np.unique(zone_epsg(np.linspace(west, east, 16), np.full(16, (south + north) / 2)))
    for epsg in (int(z) for z in zones):
        to_utm = to_zone(epsg)
        xs, ys = to_utm.transform(
            np.array([west, east, west, east]), np.array([south, south, north, north])
        )
        bounds = (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
        back = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
        keys = tiles_covering(planet, epsg, bounds)
        prefetch_features(planet, keys, workers)
        for key in keys:
            features = tile_features(planet, key)
            for dam in features.dams:
                lon, lat = back.transform(dam.x, dam.y)
                if box.contains(shapely.Point(lon, lat)) and int(zone_epsg(lon, lat)) == epsg:
                    dams.append((dam, epsg))
            if len(features.bridges):
                lon, lat = back.transform(features.bridges[:, 0], features.bridges[:, 1])
                lonlat = np.column_stack([lon, lat])
                inside = shapely.contains_xy(box, lon, lat) & (zone_epsg(lon, lat) == epsg)
                bridges.append(lonlat[inside])
            for kind, x, y in features.lookalikes:
                lon, lat = back.transform(x, y)
                if box.contains(shapely.Point(lon, lat)) and int(zone_epsg(lon, lat)) == epsg:
                    others.append((kind, float(lon), float(lat)))
    bridge_array = np.concatenate(bridges) if bridges else np.zeros((0, 2))
    kinds = ["bridge"] * len(bridge_array) + [kind for kind, _, _ in others]
    lons = list(bridge_array[:, 0]) + [lon for _, lon, _ in others]
    lats = list(bridge_array[:, 1]) + [lat for _, _, lat in others]
    lookalikes = gpd.GeoDataFrame(
        {"kind": pd.Series(kinds, dtype=object)},
        geometry=gpd.points_from_xy(lons, lats),
        crs="EPSG:4326",
    )
    return dams, bridge_array, lookalikes


def publish(
    planet: Planet,
    area: shapely.Geometry,
    rules: InventoryRules,
    workers: int = 1,
    first_serial: int = 0,
) -> Publication:
    """The planet's inventories of ``area`` (degrees; a pure function of planet, area, rules).

    ``workers`` processes compose the tiles. Record ids count from ``first_serial``, so that
    publications of separate areas can be read side by side without two records sharing an id.
    """
    dams, bridges, lookalikes = planet_structures(planet, area, workers)
    names = _names(planet)
    national: list[dict] = []
    large: list[dict] = []
    truth: list[dict] = []
    for dam, epsg in dams:
        rng = _rng(planet, dam.dam_id & 0xFFFFFFFF, dam.dam_id >> 32)
        back = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
        wall_lon, wall_lat = back.transform(dam.x, dam.y)
        name = next(names)
        km2 = dam.reservoir_area_m2 / 1e6
        row = {
            "dam_id": dam.dam_id,
            "kind": dam.kind,
            "material": dam.material,
            "reservoir_km2": km2,
            "listed_national": False,
            "listed_large": False,
            "listed_id": None,
            "listed_offset_m": np.nan,
            "geometry": shapely.Point(wall_lon, wall_lat),
        }
        year = int(rng.integers(1900, 2015))
        if rng.random() < rules.listed_share:
            x, y = _listed_position(dam, rules.errors, rng)
            lon, lat = back.transform(x, y)
            listed_id = f"PL{first_serial + len(national):05d}"
            record = {
                "DAM_ID": listed_id,
                "DAM_NAME": name,
                "DAM_TYPE": "Earthen" if dam.material == "earth" else "Concrete",
                "YEAR_COMPL": year,
                "geometry": shapely.Point(lon, lat),
            }
            national.append(record)
            row.update(
                listed_national=True,
                listed_id=listed_id,
                listed_offset_m=float(np.hypot(x - dam.x, y - dam.y)),
            )
            if rng.random() < rules.duplicate_share:
                shift = rng.uniform(10.0, 40.0)
                angle = rng.uniform(0, 2 * np.pi)
                lon2, lat2 = back.transform(x + shift * np.cos(angle), y + shift * np.sin(angle))
                national.append(
                    {
                        **record,
                        "DAM_ID": f"PL{first_serial + len(national):05d}",
                        "geometry": shapely.Point(lon2, lat2),
                    }
                )
        if km2 >= rules.large_reservoir_km2 and rng.random() < rules.large_listed_share:
            # GRanD places dams on its river network: three decimals, about 100 m.
            large.append(
                {
                    "GRAND_ID": 9000 + first_serial + len(large),
                    "RES_NAME": f"{name} Reservoir",
                    "DAM_NAME": name,
                    "YEAR": year,
                    "AREA_SKM": round(km2, 2),
                    "LONG_DD": round(float(wall_lon), 3),
                    "LAT_DD": round(float(wall_lat), 3),
                }
            )
            row["listed_large"] = True
        truth.append(row)
    bridge_lines = _nbi_lines(planet, bridges, rules.bridges_listed_share, first_serial)
    national_columns = ["DAM_ID", "DAM_NAME", "DAM_TYPE", "YEAR_COMPL", "geometry"]
    national_frame = gpd.GeoDataFrame(
        pd.DataFrame(national, columns=national_columns), geometry="geometry", crs="EPSG:4326"
    )
    truth_columns = [
        "dam_id", "kind", "material", "reservoir_km2", "listed_national", "listed_large",
        "listed_id", "listed_offset_m", "geometry",
    ]  # fmt: skip
    truth_frame = gpd.GeoDataFrame(
        pd.DataFrame(truth, columns=truth_columns), geometry="geometry", crs="EPSG:4326"
    )
    large_columns = ["GRAND_ID", "RES_NAME", "DAM_NAME", "YEAR", "AREA_SKM", "LONG_DD", "LAT_DD"]
    return Publication(
        national_dams=national_frame,
        large_dams=pd.DataFrame(large, columns=large_columns),
        bridges_nbi="\n".join(bridge_lines) + ("\n" if bridge_lines else ""),
        truth=truth_frame,
        lookalikes=lookalikes,
    )


def _listed_position(
    dam: DamRecord, errors: PositionErrors, rng: np.random.Generator
) -> tuple[float, float]:
    """Where an inventory puts a dam: near the wall, far off, or on its reservoir."""
    roll = rng.random()
    if roll < errors.on_reservoir_share and len(dam.reservoir) >= 4:
        # Somewhere on the reservoir within tail_max_m of the wall (a gauge, a boat ramp).
        near = shapely.Polygon(dam.reservoir).buffer(0) & shapely.Point(dam.x, dam.y).buffer(
            errors.tail_max_m
        )
        if not near.is_empty:
            point = near.representative_point()
            return float(point.x), float(point.y)
    if roll < errors.on_reservoir_share + errors.tail_share:
        distance = rng.uniform(2.5 * errors.sigma_m, errors.tail_max_m)
        angle = rng.uniform(0, 2 * np.pi)
        return dam.x + distance * np.cos(angle), dam.y + distance * np.sin(angle)
    dx, dy = rng.normal(0.0, errors.sigma_m, 2)
    return dam.x + float(dx), dam.y + float(dy)


_SYLLABLES = (
    "al", "bor", "cañ", "dú", "el", "för", "gar", "hø", "is", "jo", "kå", "lu", "mé", "nor",
    "ol", "pé", "qui", "ro", "sø", "ta", "ün", "va", "wé", "xi", "yo", "zé", "ñan", "çal",
)  # fmt: skip
_PREFIXES = ("Presa", "Lac", "Lake", "Barragem", "Staudamm", "Réservoir", "Dam")


def _names(planet: Planet) -> Iterator[str]:
    """Dam names with accents and non-Latin-1 letters, as national inventories have."""
    rng = _rng(planet, 7)
    while True:
        word = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
        yield f"{rng.choice(_PREFIXES)} {word.capitalize()}"


def _dms(value: float, degree_digits: int) -> str:
    """NBI degrees-minutes-seconds with hundredths: ``DDMMSSss`` or ``DDDMMSSss``."""
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60.0
    minutes = int(minutes_full)
    hundredths = int(round((minutes_full - minutes) * 60.0 * 100.0))
    if hundredths >= 6000:
        minutes, hundredths = minutes + 1, hundredths - 6000
    if minutes >= 60:
        degrees, minutes = degrees + 1, minutes - 60
    return f"{degrees:0{degree_digits}d}{minutes:02d}{hundredths:04d}"


def _nbi_lines(
    planet: Planet, bridges: np.ndarray, share: float, first_serial: int = 0
) -> list[str]:
    """Fixed-width NBI records (item 38 = 1: over a waterway) for the listed bridges."""
    rng = _rng(planet, 38)
    lines = []
    for number, (lon, lat) in enumerate(bridges):
        if rng.random() >= share:
            continue
        line = [" "] * NBI_RECORD_LENGTH
        values = {
            "state_code": "990",
            "structure_number": f"PLANET{first_serial + number:09d}",
            "features_intersected": "RIVER",
            "latitude_dms": _dms(lat, 2),
            "longitude_dms": _dms(lon, 3),  # west longitudes are positive in the NBI
            "year_built": f"{int(rng.integers(1920, 2020)):04d}",
            "navigation_control": "1",
        }
        for field, (first, last) in NBI_FIELDS.items():
            text = values[field].ljust(last - first + 1)[: last - first + 1]
            line[first - 1 : last] = list(text)
        lines.append("".join(line))
    return lines


__all__ = [
    "InventoryRules",
    "PositionErrors",
    "Publication",
    "planet_structures",
    "publish",
]
