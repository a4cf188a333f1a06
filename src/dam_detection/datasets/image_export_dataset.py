"""``ImageExportDataset``: a folder of scene folders in Earth Engine's image-export format.

``data/02_intermediate/scenes/<scene>/`` holds ``<prefix>-00000.tfrecord.gz``...,
``<prefix>-mixer.json`` and optionally ``truth.geojson``. Loading returns one lazy
:class:`~dam_detection.datasets.image_export.ImageExport` per scene; saving writes
:class:`~dam_detection.image_sources.base.SceneExport` objects, each file atomically, the mixer
last, and skips what a previous run already completed.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError

from dam_detection.datasets.export_plan import FINGERPRINT_FILE, ExportPlan
from dam_detection.datasets.image_export import (
    MIXER_SUFFIX,
    TRUTH_FILE,
    ImageExport,
    record_file_pattern,
)
from dam_detection.datasets.record_writer import (
    Compression,
    FileTarget,
    remove_leftovers,
    write_bytes_atomic,
    write_record_groups,
)
from dam_detection.image_sources.base import SceneExport

_FILE_NAME = re.compile(r"^(?P<prefix>.+?)-\d+\.tfrecord(?P<gz>\.gz)?$")


def scene_prefix(scene: str, file_names: list[str]) -> str:
    """The one ``<prefix>`` of a scene's ``<prefix>-00000.tfrecord.gz`` file names.

    Raises:
        DatasetError: If a name does not follow Earth Engine's pattern or prefixes differ.
    """
    prefixes = set()
    for name in file_names:
        match = _FILE_NAME.match(name)
        if match is None or "/" in name:
            raise DatasetError(
                f"scene {scene!r}: file name {name!r} is not <prefix>-NNNNN.tfrecord[.gz]"
            )
        prefixes.add(match["prefix"])
    if len(prefixes) != 1:
        raise DatasetError(f"scene {scene!r}: files must share one prefix, got {sorted(prefixes)}")
    return prefixes.pop()


class ImageExportDataset(AbstractDataset[ExportPlan[SceneExport], dict[str, ImageExport]]):
    """Loads and saves scenes exported in Earth Engine's image-export (TFRecord) format.

    Examples:
        ```yaml
        scenes:
          type: dam_detection.datasets.ImageExportDataset
          filepath: data/02_intermediate/scenes/
          load_args:
            kernel_size: [128, 128]   # checked against the files; omit to infer it
          save_args:
            overwrite: false          # re-runs skip scenes (and files) already complete
        ```
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"kernel_size": None}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {"overwrite": True, "compresslevel": 6, "workers": 1}

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
        """Creates a new instance of ``ImageExportDataset``.

        Args:
            filepath: Folder of scene folders, optionally with an fsspec protocol.
            load_args: ``kernel_size``: ``[kx, ky]`` the exports must have (checked against the
                first record of each scene); omitted or null infers it.
            save_args: ``overwrite`` (default true; false skips scenes whose mixer and files
                all exist, and files that exist), ``compresslevel`` (gzip 1-9, default 6),
                ``workers`` (processes writing scenes, one scene per process at a time;
                default 1).
            credentials: Passed to the fsspec filesystem.
            fs_args: Extra arguments of the fsspec filesystem constructor.
            metadata: Any arbitrary metadata, ignored by Kedro. ``created_by`` (the command
                that writes this dataset) is quoted when a load finds no scene.
        """
        _fs_args = copy.deepcopy(fs_args) or {}
        _credentials = copy.deepcopy(credentials) or {}
        protocol = fsspec.utils.get_protocol(filepath)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **_credentials, **_fs_args)
        self._filepath = filepath
        self._root = self._fs._strip_protocol(filepath).rstrip("/") or "/"
        self.metadata = metadata
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}

    def _mixer_paths(self) -> list[str]:
        if not self._fs.exists(self._root):
            return []
        return sorted(self._fs.glob(posixpath.join(self._root, "*", "*" + MIXER_SUFFIX)))

    def load(self) -> dict[str, ImageExport]:
        """One lazy :class:`ImageExport` per scene folder holding a ``*-mixer.json``.

        Raises:
            DatasetError: If no scene exists (naming the path and the command that writes it),
                or a folder holds two mixers.
        """
        kernel = self._load_args.get("kernel_size")
        scenes: dict[str, ImageExport] = {}
        for mixer_path in self._mixer_paths():
            folder, mixer_name = posixpath.split(mixer_path)
            name = posixpath.basename(folder)
            if name in scenes:
                raise DatasetError(
                    f"{folder} holds two mixers ({scenes[name].prefix}{MIXER_SUFFIX} and "
                    f"{mixer_name}); keep one export per scene folder"
                )
            scenes[name] = ImageExport(
                name=name,
                folder=folder,
                prefix=mixer_name[: -len(MIXER_SUFFIX)],
                filesystem=self._fs,
                expected_kernel_size=tuple(kernel) if kernel is not None else None,
            )
        if not scenes:
            creator = (self.metadata or {}).get(
                "created_by", "the pipeline that writes this dataset (kedro run --to-outputs ...)"
            )
            raise DatasetError(
                f"{self._filepath} holds no scene folder with a *{MIXER_SUFFIX}. "
                f"Create it by running {creator}."
            )
        return scenes

    def save(self, data: ExportPlan[SceneExport]) -> None:
        """Write every planned scene: its patch files, ``truth.geojson`` when known, the mixer
        last. A scene whose fingerprint (:meth:`ExportPlan.fingerprint_of`) or mixer changed is
        rewritten; one already complete is skipped unless ``overwrite`` is set.
        """
        if not isinstance(data, ExportPlan):
            raise DatasetError(
                f"ImageExportDataset({self._filepath}) saves an ExportPlan, got "
                f"{type(data).__name__}"
            )
        overwrite = bool(self._save_args["overwrite"])
        remove_leftovers(self._fs, self._root, f"ImageExportDataset({self._filepath})")
        plans, groups = [], []
        for name, scene in data.items.items():
            if "/" in name or name in ("", ".", ".."):
                raise DatasetError(f"{self._filepath}: invalid scene name {name!r}")
            folder = posixpath.join(self._root, name)
            changed = self._settings_changed(folder, data.fingerprint_of(name))
            existing = self._existing_mixers(folder)
            planned = json.loads(json.dumps(scene.mixer))
            # The mixer is written after every file, so a mixer as planned means a complete
            # scene; skipping here also spares a source the work of listing its files.
            same = not changed and list(existing.values()) == [planned]
            if same and not overwrite and self._has_files(existing):
                self._logger.info("scene %s: already complete, skipped", name)
                continue
            # Changed settings (another fingerprint or mixer) leave nothing reusable; a run
            # interrupted before its mixer leaves complete files that a resume keeps.
            rewrite = overwrite or changed or bool(existing)
            if not overwrite and (changed or (existing and not same)):
                self._logger.warning("scene %s: export settings changed, rewriting it", name)
            prefix = scene_prefix(name, list(scene.files))
            mixer_path = posixpath.join(folder, prefix + MIXER_SUFFIX)
            paths = {file_name: posixpath.join(folder, file_name) for file_name in scene.files}
            if rewrite:
                for stale in existing:
                    self._fs.rm(stale)
                self._remove_stale(folder, prefix, set(paths.values()))
            group: list[FileTarget] = []
            for file_name, path in paths.items():
                if not rewrite and self._fs.exists(path):
                    continue  # written completely by an interrupted earlier run
                compression: Compression = "GZIP" if file_name.endswith(".gz") else None
                group.append((path, scene.files[file_name], compression))
            groups.append(group)
            plans.append((name, folder, mixer_path, scene))
        # One scene per process: a source may render a whole scene once for all its files.
        write_record_groups(
            self._fs,
            [group for group in groups if group],
            compresslevel=int(self._save_args["compresslevel"]),
            workers=1
            if self._protocol == "memory"
            else data.workers(int(self._save_args["workers"])),
            label=f"ImageExportDataset({self._filepath})",
        )
        for name, folder, mixer_path, scene in plans:
            if scene.truth is not None:
                truth = scene.truth if scene.truth.crs is None else scene.truth.to_crs(4326)
                write_bytes_atomic(
                    self._fs, posixpath.join(folder, TRUTH_FILE), truth.to_json().encode()
                )
            mixer = json.dumps(scene.mixer, indent=2).encode()
            write_bytes_atomic(self._fs, mixer_path, mixer)
            self._logger.info("scene %s: written to %s", name, folder)
        self._fs.invalidate_cache(self._root)

    def _settings_changed(self, folder: str, fingerprint: str | None) -> bool:
        # Written before the files, so an interrupted run with the same settings resumes.
        if fingerprint is None:
            return False
        path = posixpath.join(folder, FINGERPRINT_FILE)
        previous = self._fs.cat_file(path).decode() if self._fs.exists(path) else None
        if previous != fingerprint:
            write_bytes_atomic(self._fs, path, fingerprint.encode())
        return previous is not None and previous != fingerprint

    def _has_files(self, mixers: Mapping[str, Any]) -> bool:
        (mixer_path,) = mixers
        folder, name = posixpath.split(mixer_path)
        pattern = record_file_pattern(name[: -len(MIXER_SUFFIX)])
        return any(pattern.match(posixpath.basename(p)) for p in self._fs.ls(folder, detail=False))

    def _existing_mixers(self, folder: str) -> dict[str, Any]:
        if not self._fs.exists(folder):
            return {}
        found = {}
        for path in self._fs.glob(posixpath.join(folder, "*" + MIXER_SUFFIX)):
            with self._fs.open(path, "rb") as handle:
                try:
                    found[path] = json.load(handle)
                except json.JSONDecodeError:
                    found[path] = None
        return found

    def _remove_stale(self, folder: str, prefix: str, keep: set[str]) -> None:
        # An overwrite must not leave files of a larger earlier export that the mixer would read.
        if not self._fs.exists(folder):
            return
        pattern = record_file_pattern(prefix)
        for path in self._fs.ls(folder, detail=False):
            name = posixpath.basename(path)
            stale = pattern.match(name) or name.endswith(MIXER_SUFFIX) or name == TRUTH_FILE
            if stale and path not in keep:
                self._fs.rm(path)

    def _exists(self) -> bool:
        return bool(self._mixer_paths())

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
