"""Predictions in Earth Engine's image-upload format: one folder per scene.

``<path>/<scene>/<prefix>-00000.TFRecord`` ... hold one ``tf.train.Example`` per patch, in the
export's order, cropped to ``patchDimensions``: each output band is a float_list of ``h * w``
values, row-major, north row first. ``<prefix>-mixer.json`` is a copy of the export's mixer, so
``earthengine upload image --asset_id=... <files...> <prefix>-mixer.json`` places the patches
where they came from.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import fsspec
import numpy as np
from kedro.io import AbstractDataset, DatasetError

from dam_detection.datasets.record_writer import temporary_path, write_record_file
from dam_detection.mixer import Mixer, MixerError
from dam_detection.tfrecord_codec import (
    decode_example,
    encode_example,
    iter_records,
    open_record_stream,
)

SUFFIX = ".TFRecord"


@dataclass(frozen=True)
class ScenePrediction:
    """A stitched prediction and the mixer it follows.

    Attributes:
        mixer: The scene export's mixer.
        bands: Band name to ``(mixer.height_px, mixer.width_px)`` array (any float dtype).
    """

    mixer: Mixer
    bands: dict[str, np.ndarray]


def iter_patch_examples(prediction: ScenePrediction) -> Iterator[bytes]:
    """One serialized Example per patch in export order, every band cropped to the patch."""
    mixer = prediction.mixer
    for index in range(mixer.total_patches):
        row, col = mixer.patch_origin(index)
        window = np.s_[row : row + mixer.patch_height, col : col + mixer.patch_width]
        yield encode_example(
            {
                name: np.asarray(values[window], dtype=np.float32)
                for name, values in prediction.bands.items()
            }
        )


class ScenePredictionsDataset(
    AbstractDataset[dict[str, Any], dict[str, Callable[[], ScenePrediction]]]
):
    """Saves ``{scene: ScenePrediction}`` (or zero-argument callables returning one) as folders.

    Loading returns ``{scene: callable}``; each callable reads and stitches that scene back.
    """

    def __init__(
        self,
        *,
        path: str,
        file_prefix: str = "predictions",
        max_file_size_bytes: int = 100_000_000,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            path: Folder (local or fsspec URL) holding one subfolder per scene.
            file_prefix: Prefix of the record files and of ``-mixer.json``.
            max_file_size_bytes: Records roll over to a new file past this size.
            credentials: fsspec credentials.
            fs_args: Extra fsspec filesystem arguments.
            metadata: Free-form metadata, ignored by Kedro.
        """
        self._filesystem, self._root = fsspec.core.url_to_fs(
            path, **(credentials or {}), **(fs_args or {})
        )
        self._path = path
        self._prefix = file_prefix
        self._max_bytes = max_file_size_bytes
        self.metadata = metadata

    def mixer_path(self, scene: str) -> str:
        """Path of the scene's mixer copy."""
        return posixpath.join(self._root, scene, f"{self._prefix}-mixer.json")

    def save(self, data: dict[str, Any]) -> None:
        """Write every scene's record files, then its mixer (atomically, file by file)."""
        for scene, prediction in data.items():
            if callable(prediction):
                prediction = prediction()
            self._save_scene(scene, prediction)

    def _save_scene(self, scene: str, prediction: ScenePrediction) -> None:
        mixer = prediction.mixer
        folder = posixpath.join(self._root, scene)
        for stale in self._filesystem.glob(posixpath.join(folder, f"{self._prefix}-*{SUFFIX}")):
            self._filesystem.rm(stale)
        record_bytes = 4 * mixer.patch_width * mixer.patch_height * len(prediction.bands) + 64
        per_file = max(1, self._max_bytes // record_bytes)
        examples = iter_patch_examples(prediction)
        for number, first in enumerate(range(0, mixer.total_patches, per_file)):
            count = min(per_file, mixer.total_patches - first)
            path = posixpath.join(folder, f"{self._prefix}-{number:05d}{SUFFIX}")
            records = (next(examples) for _ in range(count))
            write_record_file(self._filesystem, path, records, compression=None)
        temporary = temporary_path(self.mixer_path(scene))
        with self._filesystem.open(temporary, "w") as handle:
            json.dump(mixer.to_json(), handle, indent=2)
        self._filesystem.mv(temporary, self.mixer_path(scene))

    def load(self) -> dict[str, Callable[[], ScenePrediction]]:
        """``{scene: callable}`` for every scene folder holding a mixer copy."""
        pattern = posixpath.join(self._root, "*", f"{self._prefix}-mixer.json")
        scenes = sorted(
            posixpath.basename(posixpath.dirname(p)) for p in self._filesystem.glob(pattern)
        )
        if not scenes:
            raise DatasetError(f"no predictions under {self._path}")
        return {scene: partial(self._load_scene, scene) for scene in scenes}

    def _load_scene(self, scene: str) -> ScenePrediction:
        with self._filesystem.open(self.mixer_path(scene)) as handle:
            mixer = Mixer.from_json(json.load(handle), source=self.mixer_path(scene))
        files = sorted(
            self._filesystem.glob(posixpath.join(self._root, scene, f"{self._prefix}-*{SUFFIX}"))
        )
        bands: dict[str, np.ndarray] = {}
        index = 0
        for path in files:
            with self._filesystem.open(path, "rb") as handle:
                for record in iter_records(open_record_stream(handle)):
                    row, col = mixer.patch_origin(index)
                    for name, values in decode_example(record).items():
                        if not isinstance(values, np.ndarray):
                            raise MixerError(f"{path}: patch {index} band {name} is not numeric")
                        target = bands.setdefault(
                            name, np.zeros((mixer.height_px, mixer.width_px), np.float32)
                        )
                        if values.size != mixer.patch_width * mixer.patch_height:
                            raise MixerError(
                                f"{path}: patch {index} band {name} has {values.size} values"
                            )
                        target[row : row + mixer.patch_height, col : col + mixer.patch_width] = (
                            values.reshape(mixer.patch_height, mixer.patch_width)
                        )
                    index += 1
        if index != mixer.total_patches:
            raise MixerError(
                f"{scene}: {index} prediction patches, the mixer says {mixer.total_patches}"
            )
        return ScenePrediction(mixer, bands)

    def _exists(self) -> bool:
        return bool(
            self._filesystem.glob(posixpath.join(self._root, "*", f"{self._prefix}-mixer.json"))
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "file_prefix": self._prefix,
            "max_file_size_bytes": self._max_bytes,
        }
