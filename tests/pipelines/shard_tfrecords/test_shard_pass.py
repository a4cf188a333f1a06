"""The streaming pass end to end (plan, TFRecordShardsDataset.save, summary) on damaged input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from kedro.io.core import DatasetError

from dam_detection.datasets.tfrecord_files import list_tfrecord_files
from dam_detection.datasets.tfrecord_shards import SUMMARY_NAME, TFRecordShardsDataset
from dam_detection.pipelines.shard_tfrecords.nodes import summarize_shards
from dam_detection.tfrecord_codec import encode_example
from tests.conftest import shared_file
from tests.pipelines.shard_tfrecords.conftest import (
    BANDS,
    RADIUS,
    decode_all,
    good_files,
    patch_features,
    plan,
    points_table,
    write_tfrecord,
)

SPLITS = ["train"] * 30 + ["val"] * 9 + ["test"] * 9  # point_index 0..47


def _run(folder: Path, out: Path, points, workers: int = 1, **overrides):
    tasks = plan(folder, points, **overrides)
    shards = TFRecordShardsDataset(filepath=str(out), save_args={"workers": workers})
    shards.save(tasks)
    loaded = shards.load()
    assert loaded.summary == json.loads((out / SUMMARY_NAME).read_text())
    bands = list(overrides.get("bands", BANDS))
    stats, report = summarize_shards(loaded, bands, overrides.get("radius", RADIUS))
    return shards.load(), stats, report


@pytest.fixture
def damaged_input(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Three good files (36 records) and one file per kind of damage."""
    folder = tmp_path / "patches"
    good_files(folder, files=3, per_file=12)
    records = [encode_example(patch_features(rng, 36 + i)) for i in range(6)]
    # Truncated inside record 4: records 0-3 survive.
    raw = write_tfrecord(folder / "truncated.tfrecord.gz", records)
    cut = sum(16 + len(r) for r in records[:4]) + 20
    (folder / "truncated.tfrecord.gz").write_bytes(gzip.compress(raw[:cut], mtime=0))
    # CRC-corrupted record 2 (uncompressed file, as real exports sometimes are).
    raw = bytearray(write_tfrecord(folder / "crc.tfrecord", records[:4], compress=False))
    raw[2 * (16 + len(records[0])) + 12 + 100] ^= 0xFF
    (folder / "crc.tfrecord").write_bytes(bytes(raw))
    # One bad record of each kind between good ones.
    bad = [patch_features(rng, 42 + i) for i in range(6)]
    del bad[0]["B3"]
    bad[1]["B2"][7] = np.nan
    bad[2]["AVE"] = np.zeros_like(bad[2]["AVE"])
    bad[3]["point_index"] = np.array([999.0], dtype=np.float32)  # not in the table
    bad[4]["label"] = np.array([7.0], dtype=np.float32)
    write_tfrecord(folder / "mixed.tfrecord.gz", (encode_example(f) for f in bad))
    return folder


def test_every_record_is_accounted_for(tmp_path, damaged_input):
    files, stats, report = _run(damaged_input, tmp_path / "shards", points_table(SPLITS))
    by_file = {entry["file"]: entry for entry in report["files"]}
    assert by_file["truncated.tfrecord.gz"]["read"] == 5
    assert by_file["truncated.tfrecord.gz"]["dropped"] == {"truncated": [4]}
    assert by_file["truncated.tfrecord.gz"]["corrupt"]["record_index"] == 4
    crc = by_file["crc.tfrecord"]
    assert crc["kept"] == 2 and crc["dropped"] == {"data_crc_mismatch": [2]}
    assert crc["corrupt"]["offset"] == 2 * (16 + crc_length(damaged_input))
    assert by_file["mixed.tfrecord.gz"]["dropped"] == {
        "missing_band:B3": [0],
        "non_finite": [1],
        "empty_band": [2],
        "unknown_point_index": [3],
        "bad_label": [4],
    }
    totals = report["totals"]
    assert totals["read"] == 36 + 5 + 3 + 6 == totals["kept"] + totals["dropped"]
    assert totals["kept"] == 36 + 4 + 2 + 1 and totals["corrupt_files"] == 2
    assert sum(report["dropped_by_reason"].values()) == totals["dropped"]
    shard_records = decode_all(files, files.paths)
    assert len(shard_records) == totals["kept"]
    assert sorted(int(r["point_index"][0]) for r in shard_records) == sorted(
        [*range(36), 36, 37, 38, 39, 36, 37, 47]
    )
    assert stats["records"] == report["kept_by_split"]["train"]


def crc_length(folder: Path) -> int:
    files = list_tfrecord_files(str(folder), "crc.tfrecord")
    return len(next(iter(files.iter_records(files.paths[0]))))


def test_split_assignment_names_and_statistics(tmp_path):
    contents = good_files(tmp_path / "patches", files=4, per_file=12)
    files, stats, report = _run(tmp_path / "patches", tmp_path / "shards", points_table(SPLITS))
    for split in ("train", "val", "test"):
        paths = files.paths_under(split)
        assert paths and all("/shards-" in p and p.endswith(".tfrecord.gz") for p in paths)
        total = len(paths)
        assert [Path(p).name for p in paths] == [
            f"shards-{n:05d}-of-{total:05d}.tfrecord.gz" for n in range(total)
        ]
        indices = [int(r["point_index"][0]) for r in decode_all(files, paths)]
        assert sorted(indices) == [i for i, s in enumerate(SPLITS) if s == split]
    assert len(files.paths_under("train")) >= 2  # min_shards_per_split
    assert max(f["records"] for f in report["shard_files"]) <= 8  # records_per_shard
    # Statistics on train only, against NumPy over the original train records.
    train = [f for file in contents for f in file if SPLITS[int(f["point_index"][0])] == "train"]
    for band in BANDS:
        values = np.concatenate([f[band] for f in train]).astype(np.float64)
        band_stats = stats["bands"][band]
        assert band_stats["count"] == values.size
        assert band_stats["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert band_stats["std"] == pytest.approx(values.std(), rel=1e-9)
        assert (band_stats["min"], band_stats["max"]) == (values.min(), values.max())
        for name, q in (("p01", 1), ("p99", 99)):
            assert band_stats[name] == pytest.approx(np.percentile(values, q), rel=5e-3)
    assert stats["split"] == "train" and stats["records"] == 30


def test_shuffle_is_deterministic_for_a_seed_and_mixes_files(tmp_path):
    good_files(tmp_path / "patches", files=4, per_file=12)
    points = points_table(["val" if i % 4 == 0 else "train" for i in range(48)])

    def shard_bytes(name: str, workers: int, seed: int) -> dict[str, bytes]:
        files, _, _ = _run(tmp_path / "patches", tmp_path / name, points, workers, seed=seed)
        return {files.relative(p): Path(p).read_bytes() for p in files.paths}

    first = shard_bytes("a", 1, seed=42)
    assert shard_bytes("b", 2, seed=42) == first  # same seed: same bytes, any process count
    assert shard_bytes("c", 1, seed=43) != first
    files = list_tfrecord_files(str(tmp_path / "a"))
    order = [int(r["point_index"][0]) for r in decode_all(files, files.paths_under("train"))]
    assert order != sorted(order)
    assert len({i // 12 for i in order[:8]}) > 1  # the first shard mixes input files


def test_records_without_point_index_follow_the_parameter(tmp_path, rng):
    folder = tmp_path / "patches"
    write_tfrecord(
        folder / "no_index.tfrecord.gz",
        (encode_example(patch_features(rng, None)) for _ in range(3)),
    )
    points = points_table(SPLITS)
    with pytest.raises(DatasetError, match=r"kept nothing of 3 records.*missing_point_index: 3"):
        _run(folder, tmp_path / "dropped", points)
    assert not (tmp_path / "dropped").exists()  # nothing half-written
    files, stats, kept = _run(folder, tmp_path / "kept", points, records_without_point_index="val")
    assert kept["kept_by_split"] == {"val": 3} and stats["records"] == 0
    assert [r["point_index"][0] for r in decode_all(files, files.paths)] == [-1.0] * 3
    with pytest.raises(ValueError, match="records_without_point_index"):
        plan(folder, points, records_without_point_index="holdout")


@pytest.fixture
def real_sample(tmp_path: Path) -> Path:
    folder = tmp_path / "real"
    folder.mkdir()
    sample = shared_file("gee_samples/table_export_water_edges.tfrecord")
    shutil.copy(sample, folder / sample.name)
    return folder


def test_real_sample_is_dropped_or_kept_as_the_parameters_say(tmp_path, real_sample):
    points = points_table(["train", "val"])
    rgb = {"bands": ["B2", "B3", "B4"], "radius": 128}
    with pytest.raises(DatasetError, match=r"missing_point_index: 2.*records_without_point_index"):
        _run(real_sample, tmp_path / "a", points, **rgb)
    with pytest.raises(DatasetError, match=r"missing_band:NDWI: 2.*no band NDWI"):
        _run(real_sample, tmp_path / "b", points, radius=128)  # NDWI, AVE absent
    files, stats, report = _run(
        real_sample, tmp_path / "c", points, records_without_point_index="train", **rgb
    )
    assert report["totals"] == {
        "files": 1, "read": 2, "kept": 2, "dropped": 0, "corrupt_files": 0
    }  # fmt: skip
    labels = sorted(r["label"][0] for r in decode_all(files, files.paths))
    assert labels == [0.0, 1.0]  # read from `class`, written as `label`
    assert stats["records"] == 2 and 0.03 < stats["bands"]["B4"]["min"] < 0.04
