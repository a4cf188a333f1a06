"""``kedro run --pipelines shard_tfrecords`` in the test environment, through a KedroSession."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dam_detection.datasets.tfrecord_files import list_tfrecord_files
from dam_detection.tfrecord_codec import encode_example
from tests.conftest import run_kedro
from tests.pipelines.shard_tfrecords.conftest import (
    decode_all,
    good_files,
    patch_features,
    points_table,
    write_tfrecord,
)


def test_kedro_run_writes_shards_statistics_and_a_full_report(kedro_project: Path):
    splits = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    points_path = kedro_project / "data/03_primary/points.parquet"
    points_path.parent.mkdir(parents=True)
    points_table(splits).to_parquet(points_path)
    patches = kedro_project / "data/02_intermediate/patches"
    good_files(patches, files=2, per_file=12)
    rng = np.random.default_rng(1)
    broken = [encode_example(patch_features(rng, i)) for i in range(3)]
    raw = write_tfrecord(patches / "broken.tfrecord", broken, compress=False)
    (patches / "broken.tfrecord").write_bytes(raw[:-10])  # last record truncated

    run_kedro(kedro_project, ["shard_tfrecords"])

    report = json.loads((kedro_project / "data/08_reporting/shard_report.json").read_text())
    assert report["totals"] == {
        "files": 3, "read": 27, "kept": 26, "dropped": 1, "corrupt_files": 1
    }  # fmt: skip
    assert report["dropped_by_reason"] == {"truncated": 1}
    stats = json.loads((kedro_project / "data/05_model_input/stats.json").read_text())
    assert stats["split"] == "train" and stats["records"] == 16 + 2
    assert set(stats["bands"]) == {"B2", "B3", "B4", "NDWI", "AVE"}
    assert stats["bands"]["B2"]["count"] == 18 * 33 * 33
    shards = list_tfrecord_files(str(kedro_project / "data/05_model_input/shards"))
    assert len(decode_all(shards, shards.paths)) == 26
    assert {shards.relative(p).split("/")[0] for p in shards.paths} == {"train", "val", "test"}
    assert all(p.endswith(".tfrecord.gz") for p in shards.paths)


def _outputs(project: Path) -> dict[str, bytes]:
    """Every file shard_tfrecords wrote, by path."""
    roots = [project / "data/05_model_input", project / "data/08_reporting/shard_report.json"]
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*"))]
    return {str(p.relative_to(project)): p.read_bytes() for p in files if p.is_file()}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # a band the exports do not hold: every record dropped
        ({"bands": ["B2", "B3", "B5"]}, r"kept nothing of 24 records.*missing_band:B5: 24.*"
         r"no band B5"),
        # another patch size: the message says which radius the exports have
        ({"patch_radius": 8}, r"kept nothing.*wrong_length:B2=1089: 24.*33 x 33 px patches "
         r"\(patch_radius 16\)"),
    ],
)  # fmt: skip
def test_a_pass_that_keeps_nothing_fails_and_leaves_the_previous_shards(
    kedro_project: Path, caplog: pytest.LogCaptureFixture, params: dict, expected: str
):
    points_path = kedro_project / "data/03_primary/points.parquet"
    points_path.parent.mkdir(parents=True)
    points_table(["train"] * 16 + ["val"] * 4 + ["test"] * 4).to_parquet(points_path)
    good_files(kedro_project / "data/02_intermediate/patches", files=2, per_file=12)
    run_kedro(kedro_project, ["shard_tfrecords"])
    before = _outputs(kedro_project)

    with pytest.raises(Exception, match=expected), caplog.at_level("WARNING"):
        run_kedro(kedro_project, ["shard_tfrecords"], params=params)

    assert _outputs(kedro_project) == before  # shards, stats.json and the report untouched
    assert not list((kedro_project / "data/05_model_input").glob(".shards.*"))  # no staging
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("shard_tfrecords dropped 24 of 24 records" in message for message in warnings)
