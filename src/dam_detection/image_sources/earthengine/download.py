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


def _parts(paths: list[str], file_prefix: str) -> list[tuple[int, str]]:
    pattern = re.compile(re.escape(posixpath.basename(file_prefix)) + _PART + r"\.tfrecord(\.gz)?$")
    parts = []
    for path in paths:
        match = pattern.fullmatch(posixpath.basename(path))
        if match:
            parts.append((int(match.group("part") or 0), path))
    return sorted(parts)


class FolderListing:
    """Export files found by listing each export folder once per round of completions.

    A plan of many small exports completes many of them per poll; listing the bucket folder for
    each would be one request per file. The listing of a folder is kept until the queue reports
    a new completion (its ``completions`` counter moved), and made again once if an export's
    files are missing from it.

    Args:
        read_url: fsspec URL of the bucket or folder root.

    Attributes:
        listings: Folder listings made so far (one request each).
    """

    def __init__(self, read_url: str) -> None:
        self.read_url = read_url
        self._cache: dict[str, tuple[int, list[str]]] = {}
        self.listings = 0

    def _list(self, folder: str) -> list[str]:
        filesystem, _ = _filesystem(self.read_url)
        self.listings += 1
        try:
            return [str(path) for path in filesystem.ls(folder, detail=False, refresh=True)]
        except FileNotFoundError:
            return []

    def export_files(self, file_prefix: str, generation: int) -> list[tuple[int, str]]:
        """The TFRecord files one export wrote, in part order; a file without a part number
        counts as part 0, and another export sharing the prefix is not one of them.

        Args:
            file_prefix: The export's ``fileNamePrefix`` relative to the root.
            generation: The queue's completion count now.

        Raises:
            ExportFilesNotFoundError: If the export wrote no file there.
        """
        _, root = _filesystem(self.read_url)
        folder = posixpath.dirname(posixpath.join(root, file_prefix))
        cached = self._cache.get(folder)
        if cached is None or cached[0] != generation:
            cached = self._cache[folder] = (generation, self._list(folder))
        parts = _parts(cached[1], file_prefix)
        if not parts:  # listed before this export's files arrived: look once more
            self._cache[folder] = (generation, self._list(folder))
            parts = _parts(self._cache[folder][1], file_prefix)
        if not parts:
            raise ExportFilesNotFoundError(
                f"no TFRecord files named {file_prefix}*.tfrecord[.gz] under {self.read_url}; "
                "check that image_source.earthengine.read_url points at the bucket (or Drive "
                "folder) the tasks export to"
            )
        return parts


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
