"""A JRC-like water-occurrence raster (0-100) of the planet and the seed study's sampler.

Occurrence is the planet's own water (:mod:`.world`) averaged over each pixel of the sampling
grid and blurred by a seasonal fringe (shorelines move over the years), so Canny finds edges
of moderate strength along every river, lake and reservoir the patches and scenes show.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage
from skimage.feature import canny

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.simulated.world import (
    PIXEL_M,
    Planet,
    tile_features,
    tiles_covering,
    zone_epsg,
)

_MAX_PIXELS = 6000 * 6000
#: Sub-samples per axis in each occurrence pixel (the planet's 10 m water averaged).
_SUBSAMPLES = 4
#: Seasonal fringe: occurrence falls off over this many sampling pixels (standard deviation).
_FRINGE_PX = 1.5


def water_at(planet: Planet, epsg: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the planet has water at each ``(x, y)`` of a UTM zone (same shape, bool)."""
    col = np.floor(np.asarray(x, np.float64) / PIXEL_M).astype(np.int64)
    north = np.floor(np.asarray(y, np.float64) / PIXEL_M).astype(np.int64)
    size = planet.tile_px
    ix, iy = col // size, north // size
    out = np.zeros(col.shape, bool)
    for key in tiles_covering(
        planet, epsg, (float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y)))
    ):
        here = (ix == key.ix) & (iy == key.iy)
        if here.any():
            mask = tile_features(planet, key).water_mask()
            out[here] = mask[size - 1 - (north[here] - key.iy * size), col[here] - key.ix * size]
    return out


def _utm_for(lon: float, lat: float) -> CRS:
    return CRS.from_epsg(int(zone_epsg(lon, lat)))


def occurrence_raster(
    polygon_4326: shapely.Geometry, scale_m: float, planet: Planet
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
    offsets = ((np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5) * scale_m
    fraction = np.zeros((rows, cols), np.float64)
    epsg = int(zone_epsg(centroid.x, centroid.y))
    for dy in offsets:
        for dx in offsets:
            grid_x, grid_y = np.meshgrid(x + dx, y - dy)
            fraction += water_at(planet, epsg, grid_x, grid_y)
    fraction /= _SUBSAMPLES**2
    occurrence = ndimage.gaussian_filter(fraction, _FRINGE_PX) * 100.0
    grid_x, grid_y = np.meshgrid(x, y)
    return occurrence.astype(np.float32), grid_x, grid_y, crs


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
    regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling, planet: Planet
) -> gpd.GeoDataFrame:
    """Sample water-edge points in every region, seeded, as the seed study did.

    Args:
        regions: Polygons with a ``name`` column (any CRS; EPSG:4326 assumed if unset).
        sampling: Canny and sampling settings.
        planet: The planet (where the water is).

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
        occurrence, x, y, crs = occurrence_raster(polygon, sampling.scale_m, planet)
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
