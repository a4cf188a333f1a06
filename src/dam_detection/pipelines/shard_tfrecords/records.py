"""What a good patch record is, and why a bad one is dropped.

The feature spec comes from parameters (bands, patch radius, accepted label keys). Each check
returns the first reason that disqualifies a record, from a fixed vocabulary that the report and
the documentation share, so a reader of ``shard_report.json`` can grep the code for a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dam_detection.bands import (
    LABEL_KEY,
    OTHER_DAMS_KEY,
    POINT_INDEX_KEY,
    PatchGeometry,
    validate_band_names,
)
from dam_detection.tfrecord_codec import decode_example, encode_example

#: Every reason a readable record can be dropped for, in the order the checks run. Reports add
#: the detail after a colon where there is one: ``missing_band:B5``, ``wrong_length:B2=66049``.
DROP_REASONS: tuple[str, ...] = (
    "unparseable_example",  # the bytes are not a tf.train.Example
    "missing_band",  # a configured band is absent (Earth Engine drops bands masked at the centre)
    "wrong_band_type",  # a band is not a float_list
    "wrong_length",  # a band does not hold (2r+1)^2 values
    "non_finite",  # NaN or infinity in a band
    "empty_band",  # a band is entirely zero or constant: an empty slot, not an image
    "missing_label",  # none of the accepted label keys is present
    "bad_label",  # not exactly one value, or not 0 or 1
    "missing_point_index",  # no point_index and records without one are not allowed
    "bad_point_index",  # not exactly one non-negative whole number
    "unknown_point_index",  # not a row of the points table
)
#: Point index written for records kept without one (``records_without_point_index: <split>``).
NO_POINT_INDEX = -1


@dataclass(frozen=True)
class RecordSpec:
    """How to read and check a patch record.

    Attributes:
        bands: Band features to require and keep, in order.
        num_values: Values per band, ``(2r+1)^2``.
        label_keys: Accepted label features; the first present one is used.
    """

    bands: tuple[str, ...]
    num_values: int
    label_keys: tuple[str, ...]

    @property
    def radius(self) -> int:
        """Pixels from the centre to the edge of a patch."""
        return (int(round(np.sqrt(self.num_values))) - 1) // 2

    @classmethod
    def from_params(
        cls, bands: Sequence[str], patch_radius: int, label_keys: Sequence[str]
    ) -> RecordSpec:
        """Build the spec from ``params:bands``, ``params:patch_radius`` and the label keys."""
        if not label_keys:
            raise ValueError("shard_tfrecords.label_keys is empty: set e.g. [label, class]")
        return cls(
            bands=validate_band_names(bands),
            num_values=PatchGeometry(int(patch_radius)).num_values,
            label_keys=tuple(label_keys),
        )


@dataclass(frozen=True)
class CheckedRecord:
    """A record that passed every check, ready to write and to count."""

    bands: dict[str, np.ndarray]
    band_ranges: dict[str, tuple[float, float]]
    label: float
    point_index: int
    other_dams: np.ndarray | None = None

    def serialize(self) -> bytes:
        """The shard Example: the bands, ``label`` and ``point_index`` as floats, and the
        offsets of other known dams in the patch (``other_dams``) when there are any.
        """
        features: dict[str, Any] = dict(self.bands)
        features[LABEL_KEY] = np.array([self.label], dtype=np.float32)
        features[POINT_INDEX_KEY] = np.array([self.point_index], dtype=np.float32)
        if self.other_dams is not None and len(self.other_dams):
            features[OTHER_DAMS_KEY] = np.asarray(self.other_dams, np.float32).ravel()
        return encode_example(features)


def check_record(data: bytes, spec: RecordSpec) -> CheckedRecord | str:
    """Parse and check one serialized record.

    Args:
        data: The serialized ``tf.train.Example``.
        spec: Bands, length and label keys to check against.

    Returns:
        The checked record, or the reason (one of :data:`DROP_REASONS`) it must be dropped.
        A point index that is absent is returned as :data:`NO_POINT_INDEX`; whether that is
        allowed, and whether an index is known, is decided against the points table later.
    """
    try:
        features = decode_example(data)
    except ValueError:
        return "unparseable_example"
    bands: dict[str, np.ndarray] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for band in spec.bands:
        values = features.get(band)
        if values is None:
            return f"missing_band:{band}"
        if not isinstance(values, np.ndarray) or values.dtype != np.float32:
            return "wrong_band_type"
        if values.size != spec.num_values:
            return f"wrong_length:{band}={values.size}"
        if not np.isfinite(values).all():
            return "non_finite"
        low, high = float(values.min()), float(values.max())
        if low == high:
            return "empty_band"
        bands[band], ranges[band] = values, (low, high)
    label_value = next((features[key] for key in spec.label_keys if key in features), None)
    if label_value is None:
        return "missing_label"
    label = _single_number(label_value)
    if label not in (0.0, 1.0):
        return "bad_label"
    if POINT_INDEX_KEY not in features:
        point_index = NO_POINT_INDEX
    else:
        index = _single_number(features[POINT_INDEX_KEY])
        if index is None or index < 0 or index != int(index):
            return "bad_point_index"
        point_index = int(index)
    return CheckedRecord(bands, ranges, label, point_index)


def _single_number(value: Any) -> float | None:
    if not isinstance(value, np.ndarray) or value.size != 1 or value.dtype.kind not in "fi":
        return None
    number = float(value[0])
    return number if np.isfinite(number) else None


def reason_kind(reason: str) -> str:
    """The reason without its detail: ``missing_band:B5`` is a ``missing_band``."""
    return reason.split(":", 1)[0]
