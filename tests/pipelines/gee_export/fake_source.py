"""A tiny deterministic ImageSource for node tests: pixel values are a function of the pixel.

Every band value depends only on the pixel's position on one global 10 m grid, so overlapping
scene patches must agree and a patch's centre pixel is the point's pixel, like Earth Engine.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from dam_detection.image_sources.base import PatchRequest, SceneExport, SceneRequest
from dam_detection.mixer import Mixer, mosaic_layout
from dam_detection.tfrecord_codec import encode_example

DEGREES_PER_M = 1 / 111_320.0


def band_values(band_number: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of a band on global pixel rows/cols (broadcast)."""
    return (np.sin(rows * 0.1 + band_number) * np.cos(cols * 0.07) * 0.1 + 0.1).astype(np.float32)


def _window(bands, top: int, left: int, height: int, width: int) -> dict[str, np.ndarray]:
    rows = np.arange(top, top + height)[:, None]
    cols = np.arange(left, left + width)[None, :]
    return {band: band_values(n, rows, cols) for n, band in enumerate(bands)}


def _patch_records(
    rows: list[tuple[int, float, float, float]], request: PatchRequest
) -> list[bytes]:
    size, records = 2 * request.radius + 1, []
    for point_index, label, lon, lat in rows:
        row = round(-lat * 1e5)
        col = round(lon * 1e5)
        features = _window(request.bands, row - request.radius, col - request.radius, size, size)
        features[request.label_key] = float(label)
        features["point_index"] = float(point_index)
        records.append(encode_example(features))
    return records


def _scene_records(scene: SceneRequest, indices: range, per_row: int) -> list[bytes]:
    (patch_w, patch_h), (kernel_x, kernel_y) = scene.patch_dimensions, scene.kernel_size
    records = []
    for index in indices:
        row, col = divmod(index, per_row)
        features = _window(
            scene.bands,
            row * patch_h - kernel_y // 2,
            col * patch_w - kernel_x // 2,
            patch_h + kernel_y,
            patch_w + kernel_x,
        )
        records.append(encode_example(features))
    return records


class FakeSource:
    """Implements the ImageSource protocol for patches and scenes."""

    name = "fake"
    runs_in = "any_process"

    def patch_files(self, points: gpd.GeoDataFrame, request: PatchRequest):
        rows = [
            (int(r.point_index), float(r.label), r.geometry.x, r.geometry.y)
            for r in points.itertuples()
        ]
        per_file = request.points_per_file
        return {
            f"patches-{n:05d}": functools.partial(
                _patch_records, rows[start : start + per_file], request
            )
            for n, start in enumerate(range(0, len(rows), per_file))
        }

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        per_row, rows = mosaic_layout(scene.width_px, scene.height_px, scene.patch_dimensions)
        total = per_row * rows
        step = scene.scale_m * DEGREES_PER_M
        left = scene.center_lon - per_row * scene.patch_dimensions[0] / 2 * step
        top = scene.center_lat + rows * scene.patch_dimensions[1] / 2 * step
        mixer = Mixer(
            "EPSG:4326", (step, 0.0, left, 0.0, -step, top), *scene.patch_dimensions, per_row, total
        )
        values = (scene.patch_dimensions[0] + scene.kernel_size[0]) * (
            scene.patch_dimensions[1] + scene.kernel_size[1]
        )
        per_file = max(1, scene.max_file_size_bytes // (values * 4 * len(scene.bands)))
        files = {
            f"{scene.file_prefix}-{n:05d}.tfrecord.gz": functools.partial(
                _scene_records, scene, range(start, min(start + per_file, total)), per_row
            )
            for n, start in enumerate(range(0, total, per_file))
        }
        truth = gpd.GeoDataFrame(
            {"kind": ["dam_wall"], "dam_id": [0]},
            geometry=[Point(scene.center_lon, scene.center_lat)],
            crs=4326,
        )
        return SceneExport(mixer=mixer.to_json(), files=files, truth=truth)

    def water_edge_points(self, regions, sampling):
        raise NotImplementedError("not used by gee_export")
