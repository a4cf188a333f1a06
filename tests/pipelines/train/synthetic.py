"""Synthetic shards in the real format for train tests and benchmarks.

Each patch draws a scene around its point with NumPy: land, and depending on the kind a dam
(a bright wall with a wide reservoir on one side and a narrow river on the other), a bridge
(a deck across a river of equal width on both sides), a water edge or random land with a road.
Orientation, widths and noise vary, so the classes are learnable but not trivial.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from dam_detection.bands import DEFAULT_BANDS, PatchGeometry
from dam_detection.tfrecord_codec import encode_example, frame_record

KINDS = ("dam", "bridge", "water_edge", "random")
_LAND = {"B2": 0.05, "B3": 0.08, "B4": 0.07, "NDWI": -0.3, "AVE": 300.0}
_WATER = {"B2": 0.03, "B3": 0.04, "B4": 0.02, "NDWI": 0.4, "AVE": 290.0}
_CONCRETE = {"B2": 0.20, "B3": 0.21, "B4": 0.22, "NDWI": -0.1, "AVE": 305.0}
_NOISE = {"B2": 0.01, "B3": 0.01, "B4": 0.01, "NDWI": 0.05, "AVE": 2.0}


def render_patch(kind: str, radius: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(2r+1, 2r+1, 5)`` patch in ``DEFAULT_BANDS`` order for ``kind``."""
    size = PatchGeometry(radius).size
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = np.cos(angle) * cols + np.sin(angle) * rows
    across = -np.sin(angle) * cols + np.cos(angle) * rows
    scale = radius / 16.0
    water = np.zeros((size, size), bool)
    concrete = np.zeros((size, size), bool)
    river = rng.uniform(1.5, 3.0) * scale
    if kind == "dam":
        length = rng.uniform(4, 7) * scale
        concrete = (np.abs(across) < 1.2) & (np.abs(along) < length)
        water = ((across >= 1.2) & (np.hypot(along, across) < rng.uniform(8, 13) * scale)) | (
            (across <= -1.2) & (np.abs(along) < river)
        )
    elif kind == "bridge":
        water = np.abs(along) < river * 1.5
        concrete = (np.abs(across) < 1.0) & (np.abs(along) < river * 1.5 + 2)
    elif kind == "water_edge":
        water = across > rng.uniform(-1.5, 1.5)
    elif rng.random() < 0.5:
        concrete = np.abs(across - rng.uniform(-4, 4) * scale) < 0.8
    image = np.empty((size, size, len(DEFAULT_BANDS)), np.float32)
    for channel, band in enumerate(DEFAULT_BANDS):
        layer = np.full((size, size), _LAND[band] * rng.uniform(0.85, 1.15), np.float32)
        layer[water] = _WATER[band]
        layer[concrete] = _CONCRETE[band] * rng.uniform(0.8, 1.1)
        if band == "AVE":
            layer += (rows * np.sin(angle) + cols * np.cos(angle)) * 0.5
        layer += rng.normal(0.0, _NOISE[band], (size, size)).astype(np.float32)
        image[..., channel] = layer
    return image


def write_synthetic_shards(
    root: Path,
    *,
    radius: int = 16,
    records: dict[str, int] | None = None,
    shards_per_split: int = 2,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write ``<root>/<split>/shard-NNNNN-of-MMMMM.tfrecord.gz`` and return stats and points.

    Returns:
        ``stats.json`` content (train split) and point rows (``point_index``, ``kind``,
        ``label``, ``split`` ...), one per record.
    """
    records = records or {"train": 48, "val": 16, "test": 16}
    rng = np.random.default_rng(seed)
    points, train_images = [], []
    index = 0
    for split, count in records.items():
        kinds = ["dam" if i % 2 == 0 else KINDS[1 + (i // 2) % 3] for i in range(count)]
        rng.shuffle(kinds)
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for shard in range(shards_per_split):
            name = f"shard-{shard:05d}-of-{shards_per_split:05d}.tfrecord.gz"
            # mtime=0: the same seed gives the same bytes, hence the same input fingerprint.
            with (
                open(folder / name, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as handle,
            ):
                for kind in kinds[shard::shards_per_split]:
                    image = render_patch(kind, radius, rng)
                    label = 1.0 if kind == "dam" else 0.0
                    features = {b: image[..., c] for c, b in enumerate(DEFAULT_BANDS)}
                    features.update(label=label, point_index=float(index))
                    handle.write(frame_record(encode_example(features)))
                    points.append(
                        {"point_index": index, "kind": kind, "label": int(label), "split": split}
                    )
                    if split == "train":
                        train_images.append(image[::4, ::4])
                    index += 1
    stacked = np.stack(train_images).reshape(-1, len(DEFAULT_BANDS)).astype(np.float64)
    stats = {
        "split": "train",
        "records": records["train"],
        "bands": {
            band: {
                "count": int(stacked.shape[0]),
                "mean": float(stacked[:, c].mean()),
                "std": float(stacked[:, c].std()),
                "min": float(stacked[:, c].min()),
                "max": float(stacked[:, c].max()),
                "p01": float(np.percentile(stacked[:, c], 1)),
                "p99": float(np.percentile(stacked[:, c], 99)),
            }
            for c, band in enumerate(DEFAULT_BANDS)
        },
        "band_order": list(DEFAULT_BANDS),
        "patch_size_px": 2 * radius + 1,
        "label_key": "label",
    }
    return stats, points


def write_project_inputs(project: Path, **kwargs: Any) -> None:
    """Write shards, ``stats.json`` and ``points.parquet`` where the catalog expects them."""
    import geopandas as gpd
    from shapely.geometry import Point

    stats, points = write_synthetic_shards(project / "data" / "05_model_input" / "shards", **kwargs)
    (project / "data" / "05_model_input" / "stats.json").write_text(json.dumps(stats))
    rows = [
        {
            "point_id": f"synthetic:{p['point_index']}",
            "point_index": p["point_index"],
            "source": "synthetic",
            "kind": p["kind"],
            "label": p["label"],
            "name": None,
            "split": p["split"],
            "geometry": Point(-100 + p["point_index"] * 0.01, 40.0),
        }
        for p in points
    ]
    primary = project / "data" / "03_primary"
    primary.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(rows, crs="EPSG:4326").to_parquet(primary / "points.parquet")
