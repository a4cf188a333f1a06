"""Per-band statistics in one streaming pass, mergeable across worker processes.

Moments use Chan et al.'s parallel update (each patch contributes its count, mean and sum of
squared deviations, computed in float64), so merging partial results from any number of workers
gives the same answer as one pass. Percentiles come from a fixed histogram over the float32
bit pattern: the top 16 bits of an order-preserving key (sign, exponent and 7 mantissa bits) are
65,536 bins that cover every float from -inf to +inf with a relative bin width of at most 2^-7,
whatever the band's range. Bins are merged by adding counts, memory is fixed, and the percentile
is interpolated linearly inside its bin, clipped to the exact minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Number of histogram bins: one per value of the top 16 bits of the order-preserving key.
HISTOGRAM_BINS = 1 << 16
#: Percentiles written to stats.json, as ``name: fraction``.
PERCENTILES: dict[str, float] = {"p01": 0.01, "p99": 0.99}


def histogram_bins(values: np.ndarray) -> np.ndarray:
    """Bin index of each float32 value: the top 16 bits of its order-preserving integer key."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.int32)
    # Negative floats sort backwards as integers: flipping their 31 low bits fixes the order.
    key = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (key >> 16) + (HISTOGRAM_BINS // 2)


def bin_edges(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest float32 value of each bin (inverse of :func:`histogram_bins`)."""
    bins = np.asarray(bins, dtype=np.int64)
    low_key = ((bins - HISTOGRAM_BINS // 2) << 16).astype(np.int32)
    high_key = (low_key.astype(np.int64) + 0xFFFF).astype(np.int32)

    def to_float(key: np.ndarray) -> np.ndarray:
        bits = key ^ ((key >> 31) & 0x7FFFFFFF)
        return bits.view(np.float32).astype(np.float64)

    return to_float(low_key), to_float(high_key)


@dataclass
class BandAccumulator:
    """Running statistics of one band: count, mean, M2, min, max and the key histogram."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS, np.int64))

    def add(self, values: np.ndarray, minimum: float, maximum: float) -> None:
        """Add one patch's finite values (``minimum``/``maximum`` already known from checks)."""
        as64 = values.astype(np.float64)
        count = as64.size
        if not count:
            return
        mean = float(as64.sum()) / count
        deviations = np.subtract(as64, mean, out=as64)
        # Not ``deviations @ deviations``: BLAS threads spin against the other workers' cores.
        self._merge_moments(count, mean, float(np.multiply(deviations, deviations, out=as64).sum()))
        self.minimum, self.maximum = min(self.minimum, minimum), max(self.maximum, maximum)
        bins = histogram_bins(values)
        first = int(bins.min())
        # A patch spans few bins: count over that window only, not all 65,536.
        counts = np.bincount(bins - first)
        self.histogram[first : first + counts.size] += counts

    def merge(self, other: BandAccumulator) -> None:
        """Fold another accumulator (e.g. another worker's) into this one."""
        if not other.count:
            return
        self._merge_moments(other.count, other.mean, other.m2)
        self.minimum, self.maximum = (
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
        )
        self.histogram += other.histogram

    def _merge_moments(self, count: int, mean: float, m2: float) -> None:
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total

    def percentile(self, fraction: float) -> float:
        """Value below which ``fraction`` of the values lie (linear within the bin)."""
        if not self.count:
            return float("nan")
        cumulative = np.cumsum(self.histogram)
        rank = fraction * (self.count - 1)  # NumPy's default ("linear") convention
        index = int(np.searchsorted(cumulative, rank, side="right"))
        before = int(cumulative[index - 1]) if index else 0
        low, high = bin_edges(np.array([index]))
        inside = (rank - before + 0.5) / int(self.histogram[index])
        value = float(low[0] + (high[0] - low[0]) * min(max(inside, 0.0), 1.0))
        return min(max(value, self.minimum), self.maximum)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able state (sparse histogram) that :func:`accumulator_from_json` restores."""
        nonzero = np.flatnonzero(self.histogram)
        return {
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.minimum if self.count else None,
            "max": self.maximum if self.count else None,
            "histogram_bins": nonzero.tolist(),
            "histogram_counts": self.histogram[nonzero].tolist(),
        }

    def summary(self) -> dict[str, float | int]:
        """The ``stats.json`` entry: count, mean, std (population), min, max, p01, p99."""
        if not self.count:
            return {"count": 0}
        result: dict[str, float | int] = {
            "count": self.count,
            "mean": self.mean,
            "std": float(np.sqrt(max(self.m2, 0.0) / self.count)),
            "min": self.minimum,
            "max": self.maximum,
        }
        result.update({name: self.percentile(q) for name, q in PERCENTILES.items()})
        return result


def accumulator_from_json(state: Mapping[str, Any]) -> BandAccumulator:
    """Rebuild an accumulator from :meth:`BandAccumulator.to_json`."""
    histogram = np.zeros(HISTOGRAM_BINS, np.int64)
    histogram[np.asarray(state["histogram_bins"], dtype=np.int64)] = state["histogram_counts"]
    empty = not state["count"]
    return BandAccumulator(
        count=int(state["count"]),
        mean=float(state["mean"]),
        m2=float(state["m2"]),
        minimum=float("inf") if empty else float(state["min"]),
        maximum=float("-inf") if empty else float(state["max"]),
        histogram=histogram,
    )


def merge_band_states(
    states: list[Mapping[str, Mapping[str, Any]]], bands: list[str]
) -> dict[str, BandAccumulator]:
    """Merge per-worker ``{band: state}`` mappings into one accumulator per band."""
    merged = {band: BandAccumulator() for band in bands}
    for state in states:
        for band in bands:
            if band in state:
                merged[band].merge(accumulator_from_json(state[band]))
    return merged
