"""A JRC-like water-occurrence raster (0-100) and the seed study's water-edge sampler.

Occurrence is a world field: a function of Web Mercator metres and the world seed, so that
overlapping regions agree and a patch renderer can ask which way the shore faces at a point.
Natural water bodies get a seasonal fringe (occurrence falls off over a few hundred metres),
which Canny sees as edges of moderate strength; a few sharp-edged ponds play the part of the
artefacts (lakes in deserts, image borders) whose strong edges the study masked out.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage
from skimage.feature import canny

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.simulated.noise import world_noise

_WATER_SCALE_M = 6000.0
_CORE, _FRINGE = 0.30, 0.10  # occurrence rises from 0 to 100 across this band of the field
_PONDS_SCALE_M = 1500.0
_MAX_PIXELS = 6000 * 6000
_TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def occurrence_at(x_m: np.ndarray, y_m: np.ndarray, seed: int) -> np.ndarray:
    """Water occurrence (0-100, float32) at Web Mercator coordinates."""
    field = world_noise(x_m, y_m, seed, _WATER_SCALE_M, octaves=4)
    natural = np.clip((field - _CORE) / _FRINGE, 0.0, 1.0) * 100.0
    ponds = world_noise(x_m, y_m, seed + 1, _PONDS_SCALE_M, octaves=1) > 0.93
    return np.where(ponds, 100.0, natural).astype(np.float32)


def shore_direction(lon: float, lat: float, seed: int) -> float | None:
    """Direction from water to land at a point, radians in canvas axes (0 east, pi/2 south).

    ``None`` where the occurrence field is flat (the renderer then picks a direction).
    """
    x, y = _TO_MERCATOR.transform(lon, lat)
    step = 100.0
    xs = np.array([x + step, x - step, x, x])
    ys = np.array([y, y, y + step, y - step])
    field = world_noise(xs, ys, seed, _WATER_SCALE_M, octaves=4)
    east, north = field[0] - field[1], field[2] - field[3]
    if np.hypot(east, north) < 1e-9:
        return None
    # Water lies up the gradient; canvas rows run south, so north flips sign.
    return float(np.arctan2(north, -east))


def _utm_for(lon: float, lat: float) -> CRS:
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def occurrence_raster(
    polygon_4326: shapely.Geometry, scale_m: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CRS]:
    """Occurrence on a UTM grid covering a polygon's bounds.

    Returns:
        ``(occurrence, x, y, crs)``: the raster and the UTM coordinates of its pixel centres.
    """
    centroid = polygon_4326.centroid
    crs = _utm_for(centroid.x, centroid.y)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    polygon = shapely.transform(polygon_4326, to_utm.transform, interleaved=False)
    minx, miny, maxx, maxy = polygon.bounds
    cols = int(np.ceil((maxx - minx) / scale_m)) + 1
    rows = int(np.ceil((maxy - miny) / scale_m)) + 1
    if rows * cols > _MAX_PIXELS:
        raise ValueError(
            f"a region of {rows}x{cols} pixels at {scale_m} m is too large to sample; "
            "raise WaterEdgeSampling.scale_m or split the region"
        )
    x = minx + (np.arange(cols) + 0.5) * scale_m
    y = maxy - (np.arange(rows) + 0.5) * scale_m
    grid_x, grid_y = np.meshgrid(x, y)
    to_mercator = Transformer.from_crs(crs, "EPSG:3857", always_xy=True)
    mx, my = to_mercator.transform(grid_x, grid_y)
    return occurrence_at(mx, my, seed), grid_x, grid_y, crs


def edge_pixels(occurrence: np.ndarray, sampling: WaterEdgeSampling) -> np.ndarray:
    """Canny edges of occurrence, without the strongest ones (the study's artefact mask)."""
    edges = canny(
        occurrence.astype(np.float64),
        sigma=sampling.canny_sigma,
        low_threshold=sampling.canny_threshold,
        high_threshold=sampling.canny_threshold,
    )
    smoothed = ndimage.gaussian_filter(occurrence.astype(np.float64), sampling.canny_sigma)
    strength = np.hypot(ndimage.sobel(smoothed, 0), ndimage.sobel(smoothed, 1))
    return edges & (strength < sampling.max_edge_strength)


def water_edge_points(
    regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling, world_seed: int
) -> gpd.GeoDataFrame:
    """Sample water-edge points in every region, seeded, as the seed study did.

    Args:
        regions: Polygons with a ``name`` column (any CRS; EPSG:4326 assumed if unset).
        sampling: Canny and sampling settings.
        world_seed: Seed of the simulated world (where the water is).

    Returns:
        Points in EPSG:4326 with columns ``region`` and ``geometry``.
    """
    if "name" not in regions.columns:
        raise ValueError("regions need a 'name' column naming each polygon")
    if regions.crs is not None and not regions.crs.equals("EPSG:4326"):
        regions = regions.to_crs("EPSG:4326")
    names: list[str] = []
    lons: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    for index, (name, polygon) in enumerate(zip(regions["name"], regions.geometry, strict=True)):
        occurrence, x, y, crs = occurrence_raster(polygon, sampling.scale_m, world_seed)
        rows, cols = np.nonzero(edge_pixels(occurrence, sampling))
        px, py = x[rows, cols], y[rows, cols]
        to_4326 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_4326.transform(px, py)
        inside = shapely.contains_xy(polygon, lon, lat)
        lon, lat = np.asarray(lon)[inside], np.asarray(lat)[inside]
        rng = np.random.default_rng([int(sampling.seed) & 0xFFFFFFFF, index])
        keep = rng.random(lon.size) < sampling.factor
        lon, lat = lon[keep], lat[keep]
        cap = sampling.max_points_per_region
        if cap is not None and lon.size > cap:
            chosen = np.sort(rng.choice(lon.size, size=cap, replace=False))
            lon, lat = lon[chosen], lat[chosen]
        names.extend([str(name)] * lon.size)
        lons.append(lon)
        lats.append(lat)
    lon_all = np.concatenate(lons) if lons else np.empty(0)
    lat_all = np.concatenate(lats) if lats else np.empty(0)
    return gpd.GeoDataFrame(
        {"region": names}, geometry=gpd.points_from_xy(lon_all, lat_all), crs="EPSG:4326"
    )
