"""A set of TFRecord files, local or remote: what ``TFRecordDataset.load`` returns.

Reading stays lazy: loading lists the files; records are read when a consumer iterates them
(with the NumPy codec) or builds a ``tf.data`` pipeline from :meth:`TFRecordFiles.paths_under`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import fsspec

from dam_detection.tfrecord_codec import GZIP_MAGIC, iter_records, open_record_stream


@dataclass(frozen=True)
class TFRecordFiles:
    """Sorted TFRecord files under one root folder or URL.

    Attributes:
        root: The folder (local path or fsspec URL such as ``gs://bucket/exports``).
        paths: Full paths of the files, sorted by name, as the filesystem spells them.
        filesystem: The fsspec filesystem that reads them.
    """

    root: str
    paths: tuple[str, ...]
    filesystem: Any

    def __len__(self) -> int:
        return len(self.paths)

    def relative(self, path: str) -> str:
        """``path`` relative to the root, e.g. ``train/shard-00000-of-00004.tfrecord.gz``."""
        return posixpath.relpath(path, self.filesystem._strip_protocol(self.root))

    def paths_under(self, subfolder: str) -> list[str]:
        """Files inside ``subfolder`` of the root (e.g. a split), as URLs TensorFlow can open."""
        prefix = subfolder.strip("/") + "/"
        return [self.url(p) for p in self.paths if self.relative(p).startswith(prefix)]

    def url(self, path: str) -> str:
        """A path TensorFlow and fsspec can open: plain for local files, else with protocol."""
        protocol = self.filesystem.protocol
        protocol = protocol[0] if isinstance(protocol, tuple | list) else protocol
        return path if protocol in ("file", "local") else f"{protocol}://{path}"

    def compression_type(self, path: str) -> Literal["GZIP", ""]:
        """``GZIP`` or ``""`` for ``tf.data.TFRecordDataset``, sniffed from the magic bytes."""
        with self.filesystem.open(path, "rb") as handle:
            return "GZIP" if handle.read(2) == GZIP_MAGIC else ""

    def iter_records(self, path: str) -> Iterator[bytes]:
        """Records of one file in order (gzip sniffed).

        Raises:
            CorruptRecordError: At the first damaged record, after the good ones before it.
        """
        with self.filesystem.open(path, "rb") as handle:
            yield from iter_records(open_record_stream(handle))


def list_tfrecord_files(
    root: str, pattern: str = "**/*.tfrecord*", fs_args: dict[str, Any] | None = None
) -> TFRecordFiles:
    """List the files matching ``pattern`` under ``root`` (a folder or fsspec URL)."""
    filesystem, stripped = fsspec.core.url_to_fs(root, **(fs_args or {}))
    found = (
        filesystem.glob(posixpath.join(stripped, pattern)) if filesystem.exists(stripped) else []
    )
    files = sorted(p for p in found if filesystem.isfile(p) and not _is_temporary(p))
    return TFRecordFiles(root=root, paths=tuple(files), filesystem=filesystem)


def _is_temporary(path: str) -> bool:
    # Files being written carry a ``.tmp`` suffix until they are renamed into place.
    return posixpath.basename(path).startswith(".") or path.endswith(".tmp")
