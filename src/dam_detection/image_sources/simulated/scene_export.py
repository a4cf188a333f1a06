"""Scenes in Earth Engine's image-export format: mixer, lazy patch files and ground truth.

The mixer carries a real projection: the UTM zone of the scene centre at the request's scale,
with the affine translation at the mosaic's top-left corner. Records are rendered lazily; the
first file of a scene renders the whole scene once and later files reuse it (one scene is
cached at a time, so planning many scenes costs no memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from skimage import measure

from dam_detection.image_sources.base import SceneExport, SceneRequest
from dam_detection.image_sources.simulated.bands_out import check_bands, render_bands, void_stripes
from dam_detection.image_sources.simulated.scene import SceneLayout, compose_scene, scene_options
from dam_detection.image_sources.simulated.spectra import sample_atmosphere
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


def _scene_rng(scene: SceneRequest, world_seed: int, salt: int) -> np.random.Generator:
    ilon = int(round((scene.center_lon + 360.0) * 1e6))
    ilat = int(round((scene.center_lat + 180.0) * 1e6))
    return np.random.default_rng(
        [world_seed & 0xFFFFFFFF, scene.seed & 0xFFFFFFFF, ilon, ilat, salt]
    )


def _compose(scene: SceneRequest, mixer: Mixer, world_seed: int) -> SceneLayout:
    shape = (mixer.height_px, mixer.width_px)
    return compose_scene(shape, _scene_rng(scene, world_seed, 1), scene.options)


def render_scene(scene: SceneRequest, world_seed: int, month: int = 7) -> dict[str, np.ndarray]:
    """Every band of the scene's mosaic (unbuffered), masked pixels 0."""
    key = repr((scene, world_seed, month))
    if _CACHE.get("key") != key:
        _CACHE.clear()
        mixer = scene_mixer(scene)
        layout = _compose(scene, mixer, world_seed)
        rng = _scene_rng(scene, world_seed, 2)
        opts = scene_options(scene.options)
        atmosphere = sample_atmosphere(rng, month, opts["cloud_rate"])
        images = render_bands(layout.canvas, atmosphere, scene.bands, rng)
        if "AVE" in images:
            voids = void_stripes(layout.canvas.shape, rng, opts["void_rate"], (-1, -1))
            images["AVE"][voids] = 0.0
        _CACHE.update(key=key, images=images)
    return _CACHE["images"]  # type: ignore[return-value]  # the cache holds only band images


@dataclass(frozen=True)
class SceneChunk:
    """Records ``first`` .. ``last - 1`` of a scene, rendered when called (picklable)."""

    scene: SceneRequest
    world_seed: int
    first: int
    last: int

    def __call__(self) -> Iterator[bytes]:
        """The serialized patches ``first`` to ``last`` (exclusive), rendering the scene once."""
        mixer = scene_mixer(self.scene)
        images = render_scene(self.scene, self.world_seed)
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


def plan_scene_export(scene: SceneRequest, world_seed: int) -> SceneExport:
    """Mixer, lazy files (rolled over at ``max_file_size_bytes``) and truth of a scene."""
    check_bands(scene.bands)
    scene_options(scene.options)
    mixer = scene_mixer(scene)
    kernel_x, kernel_y = scene.kernel_size
    values = (mixer.patch_height + kernel_y) * (mixer.patch_width + kernel_x)
    record_bytes = len(scene.bands) * (values * 4 + 32) + 16
    per_file = max(1, scene.max_file_size_bytes // record_bytes)
    files = {
        f"{scene.file_prefix}-{number:05d}.tfrecord.gz": SceneChunk(
            scene, world_seed, first, min(first + per_file, mixer.total_patches)
        )
        for number, first in enumerate(range(0, mixer.total_patches, per_file))
    }
    layout = _compose(scene, mixer, world_seed)
    return SceneExport(mixer=mixer.to_json(), files=files, truth=scene_truth(layout, mixer))


def scene_truth(layout: SceneLayout, mixer: Mixer) -> gpd.GeoDataFrame:
    """Dam wall centres (points) and reservoir outlines (polygons) in EPSG:4326."""
    to_4326 = Transformer.from_crs(mixer.crs, "EPSG:4326", always_xy=True)

    def to_lonlat(col: Any, row: Any) -> tuple[Any, Any]:
        x, y = mixer.pixel_to_crs(np.asarray(col), np.asarray(row))
        return to_4326.transform(x, y)

    kinds, ids, geometries = [], [], []
    for dam_id, dam in enumerate(layout.dams):
        lon, lat = to_lonlat(dam.wall_centre[0], dam.wall_centre[1])
        kinds.append("dam_wall")
        ids.append(dam_id)
        geometries.append(shapely.Point(lon, lat))
        if dam.reservoir.any():
            contours = measure.find_contours(np.pad(dam.reservoir, 1).astype(np.float32), 0.5)
            outline = max(contours, key=len) - 1.0 + 0.5  # to pixel-centre coordinates
            lon, lat = to_lonlat(outline[:, 1], outline[:, 0])
            polygon = shapely.Polygon(np.column_stack([lon, lat])).buffer(0)
            kinds.append("reservoir")
            ids.append(dam_id)
            geometries.append(polygon)
    return gpd.GeoDataFrame(
        {"kind": kinds, "dam_id": np.array(ids, dtype=np.int64)},
        geometry=geometries,
        crs="EPSG:4326",
    )
