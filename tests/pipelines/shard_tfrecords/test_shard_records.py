"""Record checks: every reason a record is dropped, and what a kept record becomes."""

from __future__ import annotations

import numpy as np
import pytest

from dam_detection.pipelines.shard_tfrecords.records import (
    DROP_REASONS,
    NO_POINT_INDEX,
    CheckedRecord,
    RecordSpec,
    check_record,
    reason_kind,
)
from dam_detection.tfrecord_codec import decode_example, encode_example
from tests.pipelines.shard_tfrecords.conftest import BANDS, NUM_VALUES, RADIUS, patch_features

SPEC = RecordSpec.from_params(BANDS, RADIUS, ["label", "class"])


def _damaged(rng: np.random.Generator, damage: str) -> bytes:
    features = patch_features(rng, point_index=3)
    if damage == "missing_band":
        del features["NDWI"]
    elif damage == "wrong_band_type":
        features["B3"] = np.arange(NUM_VALUES, dtype=np.int64)
    elif damage == "wrong_length":
        features["B2"] = features["B2"][:-1]
    elif damage == "non_finite":
        features["B4"][5] = np.nan
    elif damage == "empty_band_zero":
        features["AVE"] = np.zeros(NUM_VALUES, dtype=np.float32)
    elif damage == "empty_band_constant":
        features["B2"] = np.full(NUM_VALUES, 0.07, dtype=np.float32)
    elif damage == "missing_label":
        del features["label"]
    elif damage == "bad_label_value":
        features["label"] = np.array([0.5], dtype=np.float32)
    elif damage == "bad_label_two_values":
        features["label"] = np.array([1.0, 0.0], dtype=np.float32)
    elif damage == "bad_point_index_fraction":
        features["point_index"] = np.array([2.5], dtype=np.float32)
    elif damage == "bad_point_index_negative":
        features["point_index"] = np.array([-4.0], dtype=np.float32)
    return encode_example(features)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("missing_band", "missing_band:NDWI"),  # the reason names the band
        ("wrong_band_type", "wrong_band_type"),
        ("wrong_length", f"wrong_length:B2={NUM_VALUES - 1}"),
        ("non_finite", "non_finite"),
        ("empty_band_zero", "empty_band"),
        ("empty_band_constant", "empty_band"),
        ("missing_label", "missing_label"),
        ("bad_label_value", "bad_label"),
        ("bad_label_two_values", "bad_label"),
        ("bad_point_index_fraction", "bad_point_index"),
        ("bad_point_index_negative", "bad_point_index"),
    ],
)
def test_damaged_record_is_dropped_with_its_reason(rng, damage, reason):
    assert check_record(_damaged(rng, damage), SPEC) == reason
    assert reason_kind(reason) in DROP_REASONS


def test_unparseable_bytes_are_named():
    assert check_record(b"\x0a\xff\xff\xff", SPEC) == "unparseable_example"


def test_good_record_is_normalised_to_the_shard_schema(rng):
    features = patch_features(rng, point_index=11, label=1.0, label_key="class")
    features["extra"] = np.ones(4, dtype=np.float32)
    checked = check_record(encode_example(features), SPEC)
    assert isinstance(checked, CheckedRecord)
    assert checked.point_index == 11 and checked.label == 1.0
    out = decode_example(checked.serialize())
    assert sorted(out) == sorted([*BANDS, "label", "point_index"])  # `class` became `label`
    assert out["label"].tolist() == [1.0] and out["point_index"].tolist() == [11.0]
    for band in BANDS:
        np.testing.assert_array_equal(out[band], features[band])
        assert checked.band_ranges[band] == (features[band].min(), features[band].max())


def test_first_configured_label_key_wins_and_absent_index_is_marked(rng):
    features = patch_features(rng, point_index=None, label=0.0, label_key="label")
    features["class"] = np.array([1.0], dtype=np.float32)
    checked = check_record(encode_example(features), SPEC)
    assert checked.label == 0.0 and checked.point_index == NO_POINT_INDEX


def test_spec_comes_from_parameters():
    spec = RecordSpec.from_params(["B2", "B3", "B4"], 128, ["class"])
    assert spec.num_values == 257 * 257 and spec.label_keys == ("class",)
    with pytest.raises(ValueError, match="label_keys"):
        RecordSpec.from_params(["B2"], 1, [])
    with pytest.raises(ValueError, match="more than once"):
        RecordSpec.from_params(["B2", "B2"], 1, ["label"])
