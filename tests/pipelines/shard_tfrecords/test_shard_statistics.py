"""Streaming band statistics against NumPy, and merging across workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dam_detection.pipelines.shard_tfrecords.statistics import (
    BandAccumulator,
    accumulator_from_json,
    bin_edges,
    histogram_bins,
    merge_band_states,
)


def _feed(accumulator: BandAccumulator, chunks: list[np.ndarray]) -> BandAccumulator:
    for chunk in chunks:
        accumulator.add(chunk, float(chunk.min()), float(chunk.max()))
    return accumulator


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.uniform(0.02, 0.35, 5000),  # reflectance
        lambda rng: rng.uniform(-0.9, 0.9, 5000),  # NDWI, both signs
        lambda rng: rng.normal(1500.0, 400.0, 5000),  # elevation in metres
        lambda rng: rng.lognormal(-3.0, 1.0, 5000),  # skewed
    ],
)
def test_statistics_match_numpy(make):
    rng = np.random.default_rng(3)
    chunks = [make(rng).astype(np.float32) for _ in range(6)]
    values = np.concatenate(chunks).astype(np.float64)
    summary = _feed(BandAccumulator(), chunks).summary()
    assert summary["count"] == values.size
    assert summary["mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
    assert summary["std"] == pytest.approx(values.std(), rel=1e-9)
    assert summary["min"] == values.min() and summary["max"] == values.max()
    spread = values.max() - values.min()
    for name, q in (("p01", 1), ("p99", 99)):
        # Bins are at most 2^-7 of the value wide; interpolation inside them does better.
        assert summary[name] == pytest.approx(np.percentile(values, q), rel=4e-3, abs=1e-4 * spread)


def test_merging_partial_states_equals_one_pass():
    rng = np.random.default_rng(5)
    chunks = [rng.normal(0.1, 0.05, 3000).astype(np.float32) for _ in range(8)]
    single = _feed(BandAccumulator(), chunks)
    halves = [_feed(BandAccumulator(), chunks[:3]), _feed(BandAccumulator(), chunks[3:])]
    states = [{"B2": json.loads(json.dumps(h.to_json()))} for h in halves]  # through JSON
    merged = merge_band_states(states, ["B2"])["B2"]
    assert merged.count == single.count
    assert merged.mean == pytest.approx(single.mean, rel=1e-12)
    assert merged.m2 == pytest.approx(single.m2, rel=1e-9)
    np.testing.assert_array_equal(merged.histogram, single.histogram)
    assert merged.summary() == pytest.approx(single.summary(), rel=1e-9)


def test_histogram_bins_preserve_order_and_invert():
    values = np.array([-3e4, -1.0, -1e-3, -0.0, 0.0, 1e-3, 0.07, 1.0, 9000.0], dtype=np.float32)
    bins = histogram_bins(values)
    assert np.all(np.diff(bins) >= 0)
    low, high = bin_edges(bins)
    assert np.all(low <= values) and np.all(values <= high)
    assert np.all((high - low) <= np.abs(values) * 2**-7 + 1e-30)


def test_empty_accumulator_round_trips():
    empty = accumulator_from_json(BandAccumulator().to_json())
    assert empty.count == 0 and empty.summary() == {"count": 0}
