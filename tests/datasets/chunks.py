"""Picklable record producers for the parallel-save tests (no TensorFlow: workers start fast)."""

from __future__ import annotations

import os

from dam_detection.tfrecord_codec import encode_example


def numbered_records(file_index: int, count: int) -> list[bytes]:
    """``count`` Examples tagged with the file, the position and the writing process id."""
    return [
        encode_example({"file": file_index, "position": position, "pid": os.getpid()})
        for position in range(count)
    ]
