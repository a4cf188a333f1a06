"""``TFRecordDataset``: a folder (or glob) of TFRecord files, local or on any fsspec filesystem.

Modelled on kedro-datasets' ``TensorFlowModelDataset``. Loading lists the files and returns a
lazy :class:`~dam_detection.datasets.tfrecord_files.TFRecordFiles`; saving writes each file
atomically, optionally skips files that are already complete (a re-run resumes) and can run
record producers in worker processes.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError

from dam_detection.datasets.export_plan import FINGERPRINT_FILE, ExportPlan
from dam_detection.datasets.record_writer import (
    RecordSource,
    record_suffix,
    remove_leftovers,
    write_bytes_atomic,
    write_record_files,
)
from dam_detection.datasets.tfrecord_files import (
    TFRecordFiles,
    list_tfrecord_files,
    unread_files,
)

_GLOB_CHARACTERS = frozenset("*?[")


def split_glob(path: str) -> tuple[str, str | None]:
    """Split ``a/b/*.tfrecord.gz`` into the folder before the first glob part and the pattern.

    Returns:
        ``(root, pattern)``; ``pattern`` is ``None`` when ``path`` has no glob characters.
    """
    parts = path.split("/")
    for position, part in enumerate(parts):
        if _GLOB_CHARACTERS & set(part):
            return "/".join(parts[:position]) or "/", "/".join(parts[position:])
    return path.rstrip("/") or "/", None


class TFRecordDataset(AbstractDataset[ExportPlan[RecordSource], TFRecordFiles]):
    """Loads and saves a set of TFRecord files (e.g. Earth Engine table exports or shards).

    Examples:
        Using the YAML API:

        ```yaml
        patches:
          type: dam_detection.datasets.TFRecordDataset
          filepath: data/02_intermediate/patches/
          save_args:
            overwrite: false   # re-runs skip files that are already complete
            workers: 2
          metadata:
            created_by: kedro run --pipelines gee_export

        earth_engine_exports:
          type: dam_detection.datasets.TFRecordDataset
          filepath: gs://my-bucket/exports/*.tfrecord.gz
          credentials: gcs_credentials
        ```

        Using the Python API:

        >>> from dam_detection.datasets import ExportPlan, TFRecordDataset
        >>> dataset = TFRecordDataset(filepath=str(tmp_path / "shards"))
        >>> dataset.save(ExportPlan({"train/shard-00000-of-00001": [b"record"]}))
        >>> files = dataset.load()
        >>> [list(files.iter_records(p)) for p in files.paths]
        [[b'record']]
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"pattern": "**/*.tfrecord*"}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {
        "compression": "GZIP",
        "compresslevel": 6,
        "overwrite": True,
        "workers": 1,
    }

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``TFRecordDataset``.

        Args:
            filepath: Folder or glob, optionally prefixed with an fsspec protocol
                (``gs://bucket/exports/*.tfrecord.gz``). A glob is relative to the folder
                before its first glob part, which is also where ``save`` writes.
            load_args: ``pattern``: glob under the folder when ``filepath`` has none
                (default ``**/*.tfrecord*``).
            save_args: ``compression`` (``GZIP`` or null), ``compresslevel`` (1-9, default 6),
                ``overwrite`` (default true; false skips files that already exist, which are
                complete because every file is renamed into place), ``workers`` (processes
                that run callable record producers, default 1).
            credentials: Passed to the fsspec filesystem, e.g. ``{"token": ...}`` for GCS.
            fs_args: Extra arguments of the fsspec filesystem constructor.
            metadata: Any arbitrary metadata, ignored by Kedro. ``created_by`` (the command
                that writes this dataset) is quoted when a load finds no files.
        """
        _fs_args = copy.deepcopy(fs_args) or {}
        _credentials = copy.deepcopy(credentials) or {}
        protocol = fsspec.utils.get_protocol(filepath)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **_credentials, **_fs_args)
        self._filepath = filepath
        root, pattern = split_glob(self._fs._strip_protocol(filepath))
        self._root = root
        self.metadata = metadata
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        if pattern is not None:
            self._load_args["pattern"] = pattern
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self._suffix = record_suffix(self._save_args["compression"])
        if int(self._save_args["workers"]) < 1:
            raise DatasetError(f"{filepath}: save_args.workers must be >= 1")

    @property
    def root(self) -> str:
        """The folder, with its protocol: where ``save`` writes."""
        return (
            self._root
            if self._protocol in ("file", "local")
            else f"{self._protocol}://{self._root}"
        )

    def _list(self) -> TFRecordFiles:
        return list_tfrecord_files(self.root, self._load_args["pattern"], filesystem=self._fs)

    def load(self) -> TFRecordFiles:
        """List the files (sorted by name). Records are read later, when iterated.

        Files under the folder that the pattern leaves out (``*.TFRecord.gz``, ``*.tfrec``) are
        listed in a warning.

        Raises:
            DatasetError: If no file matches, naming the path and the command that writes it.
        """
        files = self._list()
        unread = unread_files(files)
        if unread:
            self._logger.warning(
                "%s: %d files match no pattern %r and are not read: %s%s (set load_args.pattern "
                "to read them)",
                self._filepath,
                len(unread),
                self._load_args["pattern"],
                ", ".join(unread[:5]),
                ", ..." if len(unread) > 5 else "",
            )
        if not len(files):
            creator = (self.metadata or {}).get(
                "created_by", "the pipeline that writes this dataset (kedro run --to-outputs ...)"
            )
            state = "is empty" if self._fs.exists(self._root) else "does not exist"
            raise DatasetError(
                f"{self._filepath} {state}: no files match {self._load_args['pattern']!r}. "
                f"Create it by running {creator}."
            )
        return files

    def save(self, data: ExportPlan[RecordSource]) -> None:
        """Write the planned files, each under a temporary name renamed into place when complete.

        Args:
            data: The plan: relative stem (``train/shards-00000-of-00004``) to the file's
                records or a zero-argument callable returning them, run in ``workers`` processes
                when the plan allows (``runs_in: any_process``). Each stem becomes
                ``<stem>.tfrecord.gz`` (``.tfrecord`` without compression). With
                ``overwrite: false`` an existing file is skipped and its producer never called,
                unless the plan's fingerprint differs from the one the files were written with:
                then every file is written again.
        """
        if not isinstance(data, ExportPlan):
            raise DatasetError(
                f"TFRecordDataset({self._filepath}) saves an ExportPlan, got {type(data).__name__}"
            )
        args = self._save_args
        overwrite, label = bool(args["overwrite"]), f"TFRecordDataset({self._filepath})"
        remove_leftovers(self._fs, self._root, label)
        if self._settings_changed(data.fingerprint):
            overwrite = True
        targets = []
        for stem, source in data.items.items():
            path = self._path_of(stem)
            if not overwrite and self._fs.exists(path):
                continue
            targets.append((path, source))
        skipped = len(data.items) - len(targets)
        if skipped:
            self._log(f"{label}: {skipped} of {len(data.items)} files already complete, skipped")
        write_record_files(
            self._fs,
            targets,
            compression=args["compression"],
            compresslevel=int(args["compresslevel"]),
            workers=1 if self._protocol == "memory" else data.workers(int(args["workers"])),
            label=label,
        )
        self._fs.invalidate_cache(self._root)

    def _settings_changed(self, fingerprint: str | None) -> bool:
        """Record ``fingerprint`` before writing; if another one was there, drop stale files.

        It is written first so that an interrupted run leaves its own fingerprint and the
        re-run with the same settings resumes instead of starting over.
        """
        if fingerprint is None:
            return False
        path = posixpath.join(self._root, FINGERPRINT_FILE)
        previous = self._fs.cat_file(path).decode() if self._fs.exists(path) else None
        changed = previous is not None and previous != fingerprint
        if changed:
            stale = self._list().paths
            self._logger.warning(
                "%s: export settings changed since its files were written: removing %d files "
                "and writing them again",
                self._filepath,
                len(stale),
            )
            for stale_path in stale:
                self._fs.rm(stale_path)
        if previous != fingerprint:
            write_bytes_atomic(self._fs, path, fingerprint.encode())
        return changed

    def _path_of(self, stem: str) -> str:
        stem = stem.strip("/")
        if not stem or ".." in stem.split("/"):
            raise DatasetError(f"{self._filepath}: invalid file stem {stem!r}")
        return posixpath.join(self._root, stem + self._suffix)

    def _exists(self) -> bool:
        return bool(len(self._list()))

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(self._root)

    def _log(self, message: str) -> None:
        self._logger.info(message)
