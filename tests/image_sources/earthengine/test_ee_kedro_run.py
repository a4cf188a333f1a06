"""``kedro run --env earthengine`` offline: gee_export through a real KedroSession with the Earth
Engine source, reading what a fake Earth Engine leaves in a local bucket, then shard_tfrecords on
those patches in the same project.

The project's hook initialises Earth Engine from ``conf/local/credentials.yml`` (``ee.Initialize``
done offline); the export tasks go to :class:`FakeTaskApi`, which writes the files the way Earth
Engine does, derived from each start request: table exports as TFRecord (gzip, uncompressed, or
split into parts) with one Example per requested point, the image export as gzip parts cut at
``maxFileSize`` plus the mixer of the requested grid.
"""

from __future__ import annotations

import gzip
import json
import posixpath
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from dam_detection.bands import POINT_INDEX_KEY
from dam_detection.datasets import ImageExportDataset, TFRecordDataset
from dam_detection.datasets.tfrecord_files import list_tfrecord_files
from dam_detection.tfrecord_codec import (
    decode_example,
    encode_example,
    frame_record,
    iter_records,
    open_record_stream,
)
from tests.conftest import run_kedro
from tests.image_sources.earthengine.conftest import PROJECT, FakeTaskApi, destination_prefix
from tests.image_sources.earthengine.ee_graph import constant, invocations, point_features

ENV = "earthengine_test"
BUCKET = "dams-test"
BANDS = ["B2", "B3", "B4", "NDWI", "AVE"]
KINDS = ["dam", "bridge", "water_edge", "random"]
SPLITS = ["train", "train", "train", "train", "val", "test"]
COUNT = 24  # three table exports of 8 points (conf/test)
MASKED = 13  # Earth Engine drops a band masked at the centre pixel: this record lacks AVE
#: How the fake Earth Engine lays out each table export's files (by export number).
TABLE_LAYOUT = {0: "gzip", 1: "uncompressed", 2: "two_parts"}


def write_points(project: Path) -> gpd.GeoDataFrame:
    """The points table ingest_points would write, inside the test scene's box."""
    points = gpd.GeoDataFrame(
        {
            "point_id": [f"test:{i:03d}" for i in range(COUNT)],
            "point_index": np.arange(COUNT, dtype="int64"),
            "source": "test",
            "kind": [KINDS[i % 4] for i in range(COUNT)],
            "label": [int(i % 4 == 0) for i in range(COUNT)],
            "name": None,
            "split": [SPLITS[i % 6] for i in range(COUNT)],
        },
        geometry=[Point(-99.9 + 0.03 * i, 40.2 + 0.02 * i) for i in range(COUNT)],
        crs=4326,
    )
    path = project / "data/03_primary/points.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    points.to_parquet(path)
    return points


def make_environment(project: Path) -> None:
    """``conf/earthengine_test``: conf/test's sizes plus conf/earthengine's settings as shipped.

    Like ``--env earthengine``, the gee_export catalog is conf/base's; only the shards are
    written in one process, as in conf/test.
    """
    env = project / "conf" / ENV
    env.mkdir()
    for source in (project / "conf/test").glob("parameters*.yml"):
        shutil.copy(source, env / source.name)
    shutil.copy(project / "conf/test/catalog_shard_tfrecords.yml", env)
    shutil.copy(project / "conf/earthengine/parameters.yml", env / "parameters_earthengine.yml")
    (project / "conf/local/credentials.yml").write_text(f"earthengine:\n  project: {PROJECT}\n")


class FakeEarthEngine:
    """What a finished task leaves in the bucket, derived from its start request."""

    def __init__(self, bucket: Path) -> None:
        self.bucket = bucket
        self.written: dict[str, list[bytes]] = {}  # bucket path -> records, as Earth Engine wrote
        self.mixers: list[dict[str, Any]] = []

    def __call__(self, request_id: str, config: dict[str, Any]) -> None:
        prefix = self.bucket / destination_prefix(config)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        if config["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE":
            self.table_export(prefix, config)
        else:
            self.image_export(prefix, config)

    def write(self, path: Path, records: list[bytes], compressed: bool) -> None:
        data = b"".join(frame_record(record) for record in records)
        path.write_bytes(gzip.compress(data) if compressed else data)
        self.written[path.relative_to(self.bucket).as_posix()] = records

    def table_export(self, prefix: Path, config: dict[str, Any]) -> None:
        expression = config["expression"]
        (kernel,) = invocations(expression, "Kernel.rectangle")
        side = 2 * constant(kernel["xRadius"]) + 1
        *bands, label_key, index_key = config["selectors"]
        records = []
        for properties in point_features(expression):
            index = int(properties[index_key])
            rng = np.random.default_rng(index)
            values = {
                "B2": rng.uniform(0.02, 0.3, side * side),
                "B3": rng.uniform(0.02, 0.3, side * side),
                "B4": rng.uniform(0.02, 0.3, side * side),
                "NDWI": rng.uniform(-0.8, 0.8, side * side),
                "AVE": rng.normal(400.0, 30.0, side * side),
            }
            features = {band: values[band].astype(np.float32) for band in bands}
            if index == MASKED:
                del features["AVE"]
            features[label_key] = [float(properties[label_key])]
            features[index_key] = [float(index)]
            records.append(encode_example(features))
        number = int(prefix.name.split("-")[1])  # patches-00001-<fingerprint>
        layout = TABLE_LAYOUT[number]
        if layout == "two_parts":
            for part, chunk in enumerate((records[:5], records[5:])):
                name = f"{prefix.name}-{part:05d}-of-00002.tfrecord.gz"
                self.write(prefix.parent / name, chunk, compressed=True)
        else:
            name = f"{prefix.name}.tfrecord.gz"  # documented as gzip, sometimes plain
            self.write(prefix.parent / name, records, compressed=layout == "gzip")

    def image_export(self, prefix: Path, config: dict[str, Any]) -> None:
        expression = config["expression"]
        (reproject,) = invocations(expression, "Image.reproject")
        (clip,) = invocations(expression, "Image.clipToBoundsAndScale")
        crs = constant(reproject["crs"]["functionInvocationValue"]["arguments"]["crs"])
        _, _, width, height = constant(
            clip["geometry"]["functionInvocationValue"]["arguments"]["coordinates"]
        )
        options = config["fileExportOptions"]["tfRecordOptions"]
        tile, margin = options["tileDimensions"], options["marginDimensions"]
        per_row = width // tile["width"]
        total = per_row * (height // tile["height"])
        values = (tile["width"] + margin["width"]) * (tile["height"] + margin["height"])
        patches = [
            encode_example(
                {
                    band: np.full(values, 0.01 * (i + 1) + b, np.float32)
                    for b, band in enumerate(BANDS)
                }
            )
            for i in range(total)
        ]
        limit, parts, size = int(options["maxSizeBytes"]["value"]), [[]], 0
        for patch in patches:
            if parts[-1] and size + len(patch) > limit:
                parts.append([])
                size = 0
            parts[-1].append(patch)
            size += len(patch)
        for part, chunk in enumerate(parts):
            self.write(prefix.parent / f"{prefix.name}-{part:05d}.tfrecord.gz", chunk, True)
        mixer = {
            "projection": {
                "crs": crs,
                "affine": {"doubleMatrix": constant(reproject["crsTransform"])},
            },
            "patchDimensions": [tile["width"], tile["height"]],
            "patchesPerRow": per_row,
            "totalPatches": total,
        }
        (prefix.parent / f"{prefix.name}-mixer.json").write_text(json.dumps(mixer))
        self.mixers.append(mixer)


def records_of(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return list(iter_records(open_record_stream(handle)))


def test_gee_export_on_earth_engine_then_shards_through_kedro_sessions(
    kedro_project, bucket, monkeypatch, ee_initialize_offline
):
    make_environment(kedro_project)
    points = write_points(kedro_project)
    earth_engine = FakeEarthEngine(bucket)
    api = FakeTaskApi(earth_engine).install(monkeypatch)
    monkeypatch.chdir(kedro_project)  # `kedro run` runs in the project: the manifest lands there
    # As `--params image_source.earthengine.bucket=... read_url=... tasks.poll_interval_s=0`.
    params = {
        "image_source": {
            "earthengine": {
                "bucket": BUCKET,
                "read_url": bucket.as_uri(),
                "tasks": {"poll_interval_s": 0},
            }
        }
    }

    run_kedro(kedro_project, ["gee_export"], env=ENV, params=params)

    # The hook initialised Earth Engine from conf/local before the nodes planned any export.
    assert ee_initialize_offline == [{"credentials": "persistent", "project": PROJECT}]
    kinds = sorted(config["fileExportOptions"]["fileFormat"] for _, config in api.starts)
    assert kinds == ["TF_RECORD_IMAGE"] + ["TF_RECORD_TABLE"] * 3
    for _, config in api.starts:
        destination = config["fileExportOptions"]["cloudStorageDestination"]
        assert destination["bucket"] == BUCKET
        assert destination["filenamePrefix"].startswith("dam_detection/")
    manifest = kedro_project / "data/02_intermediate/earthengine_tasks"
    entries = [json.loads(path.read_text()) for path in sorted(manifest.glob("*.json"))]
    assert [entry["state"] for entry in entries] == ["COMPLETED"] * 4

    # patches: one file per export, records exactly as Earth Engine left them, every point once.
    patches = TFRecordDataset(filepath=str(kedro_project / "data/02_intermediate/patches")).load()
    assert [posixpath.basename(p) for p in patches.paths] == [
        f"patches-{n:05d}.tfrecord.gz" for n in range(3)
    ]
    exported = {
        n: [
            r
            for path, rs in sorted(earth_engine.written.items())
            if f"patches-{n:05d}-" in path
            for r in rs
        ]
        for n in range(3)
    }
    assert [len(exported[n]) for n in range(3)] == [8, 8, 8]
    gzipped = {
        path: (bucket / path).read_bytes()[:2] == b"\x1f\x8b"
        for path in earth_engine.written
        if "/patches/" in path
    }
    assert sorted(gzipped.values()) == [False, True, True, True]  # one plain, one in two parts
    for n, path in enumerate(patches.paths):
        assert list(patches.iter_records(path)) == exported[n]
    indices = [
        int(decode_example(record)[POINT_INDEX_KEY][0])
        for path in patches.paths
        for record in patches.iter_records(path)
    ]
    assert indices == list(range(COUNT))
    assert (kedro_project / "data/08_reporting/patch_gallery.png").stat().st_size > 1000

    # scenes: the image export's parts (split at maxFileSize) and its mixer, unchanged.
    scenes = ImageExportDataset(filepath=str(kedro_project / "data/02_intermediate/scenes")).load()
    scene = scenes["test_scene"]
    (mixer,) = earth_engine.mixers
    assert (mixer["patchesPerRow"], mixer["totalPatches"]) == (3, 6)  # 96 x 80 px -> 96 x 64
    assert scene.mixer.to_json() == mixer
    assert [Path(p).name for p in scene.file_paths] == [
        "scene-00000.tfrecord.gz",
        "scene-00001.tfrecord.gz",
    ]
    scene_records = [r for path in scene.file_paths for r in records_of(Path(path))]
    assert scene_records == [
        r for path, rs in sorted(earth_engine.written.items()) if "/scenes/" in path for r in rs
    ]
    assert scene.count_records() == 6
    tiles = list(scene.iter_patches(BANDS))
    assert [tile.shape for tile in tiles] == [(48, 48, 5)] * 6  # 32 + kernel 16 each way
    expected = [[0.01 * (i + 1) + b for b in range(5)] for i in range(6)]
    np.testing.assert_allclose([tile[47, 47] for tile in tiles], expected, rtol=1e-6)

    # shard_tfrecords consumes the downloaded patches like any others.
    run_kedro(kedro_project, ["shard_tfrecords"], env=ENV, params=params)

    report = json.loads((kedro_project / "data/08_reporting/shard_report.json").read_text())
    assert report["totals"] == {
        "files": 3, "read": COUNT, "kept": COUNT - 1, "dropped": 1, "corrupt_files": 0
    }  # fmt: skip
    assert list(report["dropped_by_reason"].values()) == [1]
    assert next(iter(report["dropped_by_reason"])).startswith("missing_band:")
    shards = list_tfrecord_files(str(kedro_project / "data/05_model_input/shards"))
    split_of = dict(zip(points["point_index"], points["split"], strict=True))
    placed = {}
    for path in shards.paths:
        for record in shards.iter_records(path):
            index = int(decode_example(record)[POINT_INDEX_KEY][0])
            assert index not in placed
            placed[index] = shards.relative(path).split("/")[0]
    assert placed == {i: split_of[i] for i in range(COUNT) if i != MASKED}
    stats = json.loads((kedro_project / "data/05_model_input/stats.json").read_text())
    train = sum(1 for i, split in placed.items() if split == "train")
    assert stats["records"] == train and stats["bands"]["AVE"]["count"] == train * 33 * 33
    assert 300 < stats["bands"]["AVE"]["mean"] < 500
    assert ee_initialize_offline == [{"credentials": "persistent", "project": PROJECT}]
    assert len(api.starts) == 4  # the second run started nothing
