"""A set of TFRecord files, local or remote: what ``TFRecordDataset.load`` returns.

Reading stays lazy: loading lists the files; records are read when a consumer iterates them
(with the NumPy codec) or builds a ``tf.data`` pipeline from :meth:`TFRecordFiles.paths_under`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
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
        summary: What the writer recorded about the files, if anything (the shards' pass
            summary: accounting and statistics, ``docs/shard_tfrecords.md``).
    """

    root: str
    paths: tuple[str, ...]
    filesystem: Any
    summary: Mapping[str, Any] | None = None

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

    def tf_dataset(
        self, subfolder: str | None = None, num_parallel_reads: int | None = None
    ) -> Any:
        """A lazily read ``tf.data.TFRecordDataset`` of the serialized records.

        TensorFlow is imported here only, so that listing and codec reads stay light. Each file's
        compression is sniffed; files of mixed compression are read one after the other.
        TensorFlow opens local paths and ``gs://`` URLs itself; for other protocols (``memory://``,
        ``s3://`` without TensorFlow-IO) use :meth:`iter_records` instead.

        Args:
            subfolder: Only the files under this subfolder of the root (e.g. ``train``).
            num_parallel_reads: Files read in parallel (records then interleave across files).

        Returns:
            A ``tf.data.Dataset`` of scalar ``tf.string`` records.

        Raises:
            ValueError: If no file is selected.
        """
        import tensorflow as tf

        paths = self._select(subfolder)
        if not paths:
            raise ValueError(f"no TFRecord files under {self.root!r} in subfolder {subfolder!r}")
        urls = [self.url(path) for path in paths]
        kinds = [self.compression_type(path) for path in paths]
        if len(set(kinds)) == 1:
            return tf.data.TFRecordDataset(
                urls, compression_type=kinds[0], num_parallel_reads=num_parallel_reads
            )
        per_file = tf.data.Dataset.from_tensor_slices((urls, kinds))
        return per_file.interleave(
            lambda url, kind: tf.data.TFRecordDataset(url, compression_type=kind),
            cycle_length=num_parallel_reads or 1,
            num_parallel_calls=num_parallel_reads,
        )

    def _select(self, subfolder: str | None) -> list[str]:
        if subfolder is None:
            return list(self.paths)
        prefix = subfolder.strip("/") + "/"
        return [p for p in self.paths if self.relative(p).startswith(prefix)]


def list_tfrecord_files(
    root: str,
    pattern: str = "**/*.tfrecord*",
    fs_args: dict[str, Any] | None = None,
    *,
    filesystem: Any | None = None,
) -> TFRecordFiles:
    """List the files matching ``pattern`` under ``root`` (a folder or fsspec URL).

    Args:
        root: Folder or fsspec URL.
        pattern: Glob relative to ``root``.
        fs_args: Arguments of the fsspec filesystem (ignored when ``filesystem`` is given).
        filesystem: An fsspec filesystem already configured (e.g. with credentials).
    """
    if filesystem is None:
        filesystem, stripped = fsspec.core.url_to_fs(root, **(fs_args or {}))
    else:
        stripped = filesystem._strip_protocol(root)
    found = (
        filesystem.glob(posixpath.join(stripped, pattern)) if filesystem.exists(stripped) else []
    )
    files = sorted(p for p in found if filesystem.isfile(p) and not _is_temporary(p))
    return TFRecordFiles(root=root, paths=tuple(files), filesystem=filesystem)


def _is_temporary(path: str) -> bool:
    # Files being written carry a ``.tmp`` suffix until they are renamed into place.
    return posixpath.basename(path).startswith(".") or path.endswith(".tmp")


def unread_files(files: TFRecordFiles) -> list[str]:
    """Files under ``files.root`` that the listing left out, hidden and temporary ones aside:
    e.g. ``patches-00003.TFRecord.gz`` or ``x.tfrec.gz``, which a ``*.tfrecord*`` pattern does
    not match. A reader should say so rather than ignore them.
    """
    filesystem = files.filesystem
    root = filesystem._strip_protocol(files.root)
    if not filesystem.exists(root):
        return []
    listed = set(files.paths)
    return sorted(
        files.relative(path)
        for path in filesystem.find(root)
        if path not in listed
        and not _is_temporary(path)
        and not posixpath.basename(path).startswith("_")
    )
