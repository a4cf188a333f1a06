"""Scenes in Earth Engine's image-export format: mixer, lazy patch files and ground truth.

The mixer carries a real projection: the UTM zone of the scene centre at the request's scale,
with the affine translation at the mosaic's top-left corner on the zone's 10 m grid. The
pixels are the planet's (:mod:`.world`): a scene copies its tiles pixel for pixel, so it agrees
with every patch and every other scene of the same place. Records are rendered lazily; the
first file of a scene samples the whole mosaic once and later files reuse it (one scene is
cached at a time, so planning many scenes costs no memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from dam_detection.image_sources.base import SceneExport, SceneRequest
from dam_detection.image_sources.simulated.bands_out import check_bands
from dam_detection.image_sources.simulated.world import (
    PIXEL_M,
    Planet,
    sample_block,
    sample_lonlat,
    sample_zone,
    tile_features,
    tiles_covering,
    zone_epsg,
)
from dam_detection.mixer import Mixer, mosaic_layout
from dam_detection.tfrecord_codec import encode_example

_CACHE: dict[str, object] = {}


def utm_crs(lon: float, lat: float) -> CRS:
    """The UTM zone (WGS 84, EPSG:326xx north / 327xx south) of a point."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def scene_mixer(scene: SceneRequest) -> Mixer:
    """The mixer Earth Engine would write for ``scene`` (whole patches only)."""
    patch_width, patch_height = scene.patch_dimensions
    per_row, rows = mosaic_layout(scene.width_px, scene.height_px, (patch_width, patch_height))
    crs = utm_crs(scene.center_lon, scene.center_lat)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    cx, cy = to_utm.transform(scene.center_lon, scene.center_lat)
    width, height = scene.patch_dimensions
    # Snap the corner to the pixel grid, as Earth Engine exports on the projection's grid.
    left = math.floor((cx - per_row * width * scene.scale_m / 2.0) / scene.scale_m) * scene.scale_m
    top = math.ceil((cy + rows * height * scene.scale_m / 2.0) / scene.scale_m) * scene.scale_m
    affine = (float(scene.scale_m), 0.0, float(left), 0.0, -float(scene.scale_m), float(top))
    return Mixer(f"EPSG:{crs.to_epsg()}", affine, width, height, per_row, per_row * rows)


def render_scene(scene: SceneRequest, planet: Planet) -> dict[str, np.ndarray]:
    """Every band of the scene's mosaic (unbuffered), masked pixels 0."""
    key = repr((scene, planet))
    if _CACHE.get("key") != key:
        _CACHE.clear()
        mixer = scene_mixer(scene)
        epsg = int(mixer.crs.split(":")[1])
        month = scene.composite.middle_month
        scale, _, left, _, _, top = mixer.affine
        on_grid = scale == PIXEL_M and left % PIXEL_M == 0 and top % PIXEL_M == 0
        if on_grid and _within_zone(mixer, epsg):  # the planet's own grid: copy tile blocks
            first_col, top_north = int(left // PIXEL_M), int(top // PIXEL_M) - 1
            sample = sample_block(
                planet, month, scene.bands, epsg, first_col, top_north,
                mixer.width_px, mixer.height_px,
            )  # fmt: skip
        elif _within_zone(mixer, epsg):
            rows, cols = np.mgrid[0 : mixer.height_px, 0 : mixer.width_px]
            x, y = mixer.pixel_to_crs(cols + 0.5, rows + 0.5)
            sample = sample_zone(planet, month, scene.bands, epsg, x, y)
        else:  # a scene across a zone edge takes each pixel from its own zone's tiles
            rows, cols = np.mgrid[0 : mixer.height_px, 0 : mixer.width_px]
            x, y = mixer.pixel_to_crs(cols + 0.5, rows + 0.5)
            lon, lat = Transformer.from_crs(mixer.crs, "EPSG:4326", always_xy=True).transform(x, y)
            sample = sample_lonlat(planet, month, scene.bands, np.asarray(lon), np.asarray(lat))
        _CACHE.update(key=key, images=sample.bands)
    return _CACHE["images"]  # type: ignore[return-value]  # the cache holds only band images


def _within_zone(mixer: Mixer, epsg: int) -> bool:
    """Whether every pixel of the mosaic lies in the zone of its projection."""
    width, height = mixer.width_px, mixer.height_px
    corners_x, corners_y = mixer.pixel_to_crs(
        np.array([0, width, 0, width]), np.array([0, 0, height, height])
    )
    lon, lat = Transformer.from_crs(mixer.crs, "EPSG:4326", always_xy=True).transform(
        corners_x, corners_y
    )
    return bool((zone_epsg(lon, lat) == epsg).all())


@dataclass(frozen=True)
class SceneChunk:
    """Records ``first`` .. ``last - 1`` of a scene, rendered when called (picklable)."""

    scene: SceneRequest
    planet: Planet
    first: int
    last: int

    def __call__(self) -> Iterator[bytes]:
        """The serialized patches ``first`` to ``last`` (exclusive), rendering the scene once."""
        mixer = scene_mixer(self.scene)
        images = render_scene(self.scene, self.planet)
        kernel_x, kernel_y = self.scene.kernel_size
        pad_x, pad_y = kernel_x // 2, kernel_y // 2
        padded = {
            band: np.pad(image, ((pad_y, kernel_y - pad_y), (pad_x, kernel_x - pad_x)))
            for band, image in images.items()
        }
        for index in range(self.first, self.last):
            row, col = mixer.patch_origin(index)
            height, width = mixer.patch_height + kernel_y, mixer.patch_width + kernel_x
            yield encode_example(
                {band: img[row : row + height, col : col + width] for band, img in padded.items()}
            )


def plan_scene_export(scene: SceneRequest, planet: Planet) -> SceneExport:
    """Mixer, lazy files (rolled over at ``max_file_size_bytes``) and truth of a scene.

    Raises:
        ValueError: If the scene sets ``options``: the planet decides what is where.
    """
    check_bands(scene.bands)
    if scene.options:
        raise ValueError(
            f"scene {scene.file_prefix!r} sets options {sorted(scene.options)}, but the planet "
            "decides what is where: remove them and set image_source.simulated.density (or "
            "move the scene) instead"
        )
    mixer = scene_mixer(scene)
    kernel_x, kernel_y = scene.kernel_size
    values = (mixer.patch_height + kernel_y) * (mixer.patch_width + kernel_x)
    record_bytes = len(scene.bands) * (values * 4 + 32) + 16
    per_file = max(1, scene.max_file_size_bytes // record_bytes)
    files = {
        f"{scene.file_prefix}-{number:05d}.tfrecord.gz": SceneChunk(
            scene, planet, first, min(first + per_file, mixer.total_patches)
        )
        for number, first in enumerate(range(0, mixer.total_patches, per_file))
    }
    return SceneExport(mixer=mixer.to_json(), files=files, truth=scene_truth(planet, mixer))


def scene_truth(planet: Planet, mixer: Mixer) -> gpd.GeoDataFrame:
    """Dam wall centres (points) and reservoir outlines (polygons) in the mosaic, EPSG:4326.

    ``dam_id`` is the planet's id of the dam, the same in every scene and inventory.
    """
    epsg = int(mixer.crs.split(":")[1])
    left, top = mixer.pixel_to_crs(np.array([0.0]), np.array([0.0]))
    right, bottom = mixer.pixel_to_crs(
        np.array([float(mixer.width_px)]), np.array([float(mixer.height_px)])
    )
    bounds = (float(left[0]), float(bottom[0]), float(right[0]), float(top[0]))
    footprint = shapely.box(*bounds)
    to_4326 = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    kinds, ids, geometries = [], [], []
    for key in tiles_covering(planet, epsg, bounds):
        for dam in tile_features(planet, key).dams:
            if not footprint.contains(shapely.Point(dam.x, dam.y)):
                continue
            lon, lat = to_4326.transform(dam.x, dam.y)
            kinds.append("dam_wall")
            ids.append(dam.dam_id)
            geometries.append(shapely.Point(lon, lat))
            if len(dam.reservoir) >= 4:
                ring_lon, ring_lat = to_4326.transform(dam.reservoir[:, 0], dam.reservoir[:, 1])
                kinds.append("reservoir")
                ids.append(dam.dam_id)
                geometries.append(shapely.Polygon(np.column_stack([ring_lon, ring_lat])).buffer(0))
    return gpd.GeoDataFrame(
        {"kind": kinds, "dam_id": np.array(ids, dtype=np.int64)},
        geometry=geometries,
        crs="EPSG:4326",
    )
