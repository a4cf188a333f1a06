"""Bring finished export files back from Cloud Storage (or any folder fsspec can read).

Earth Engine names the files of one export after its ``fileNamePrefix``: a table export writes
``<prefix>.tfrecord.gz`` (split into ``<prefix>-00000...`` when large), an image export writes
``<prefix>-00000.tfrecord.gz``... (or ``<prefix>.tfrecord.gz`` when one file holds every patch)
and ``<prefix>-mixer.json``. Files documented as gzip sometimes arrive uncompressed, so the
records are read through :func:`~dam_detection.tfrecord_codec.open_record_stream`, which sniffs.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import fsspec

from dam_detection.tfrecord_codec import iter_records, open_record_stream

_PART = r"(?:-(?P<part>\d{5})(?:-of-\d{5})?)?"


class ExportFilesNotFoundError(FileNotFoundError):
    """A finished export left no files where the source looks for them."""


def _filesystem(read_url: str) -> tuple[Any, str]:
    try:
        return fsspec.core.url_to_fs(read_url)
    except ImportError as error:
        raise ImportError(
            f"cannot read {read_url!r}: {error}. For gs:// URLs install gcsfs "
            "(pip install gcsfs), or set image_source.earthengine.read_url to a folder where the "
            "exported files appear (e.g. a gcsfuse mount or a synced Drive folder)"
        ) from error


def export_files(read_url: str, file_prefix: str) -> list[tuple[int, str]]:
    """The TFRecord files one export wrote, in part order.

    Args:
        read_url: fsspec URL of the bucket or folder root, e.g. ``gs://my-bucket``.
        file_prefix: The export's ``fileNamePrefix`` relative to that root.

    Returns:
        ``(part, path)`` pairs; a file without a part number counts as part 0.

    Raises:
        ExportFilesNotFoundError: If the export wrote no file there.
    """
    filesystem, root = _filesystem(read_url)
    prefix_path = posixpath.join(root, file_prefix)
    pattern = re.compile(re.escape(posixpath.basename(prefix_path)) + _PART + r"\.tfrecord(\.gz)?$")
    candidates = filesystem.glob(prefix_path + "*.tfrecord*")
    parts = []
    for path in candidates:
        match = pattern.fullmatch(posixpath.basename(path))
        if match:
            parts.append((int(match.group("part") or 0), path))
    if not parts:
        raise ExportFilesNotFoundError(
            f"no TFRecord files named {file_prefix}*.tfrecord[.gz] under {read_url}; check that "
            "image_source.earthengine.read_url points at the bucket (or Drive folder) the tasks "
            "export to"
        )
    return sorted(parts)


def read_records(read_url: str, path: str) -> Iterator[bytes]:
    """The serialized Examples of one exported file, gzip or not, in file order."""
    filesystem, _ = _filesystem(read_url)
    with filesystem.open(path, "rb") as handle:
        yield from iter_records(open_record_stream(handle))


def read_mixer(read_url: str, file_prefix: str) -> dict[str, Any]:
    """The ``<prefix>-mixer.json`` an image export wrote.

    Raises:
        ExportFilesNotFoundError: If there is none.
    """
    filesystem, root = _filesystem(read_url)
    path = posixpath.join(root, f"{file_prefix}-mixer.json")
    if not filesystem.exists(path):
        raise ExportFilesNotFoundError(
            f"no mixer at {read_url}/{file_prefix}-mixer.json: the image export did not finish "
            "there; check image_source.earthengine.read_url"
        )
    with filesystem.open(path, "rb") as handle:
        return json.loads(handle.read())
