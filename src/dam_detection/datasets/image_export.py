"""One Earth Engine image export (a scene folder), read lazily: what ``ImageExportDataset`` loads.

A scene folder holds ``<prefix>-00000.tfrecord.gz``, ``<prefix>-00001...``, ``<prefix>-mixer.json``
and, for simulated scenes, ``truth.geojson``. Nothing but the mixer is read until asked for, and
patches stream one record at a time, so a scene never has to fit in memory.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np

from dam_detection.mixer import Mixer, MixerError, buffered_shape, infer_kernel_size
from dam_detection.tfrecord_codec import (
    CorruptRecordError,
    decode_example,
    iter_records,
    open_record_stream,
)

MIXER_SUFFIX = "-mixer.json"
TRUTH_FILE = "truth.geojson"
_RECORD_FILE = r"(-\d+)?\.tfrecord(\.gz)?"


def record_file_pattern(prefix: str) -> re.Pattern[str]:
    """Names of the patch files of ``prefix``: ``<prefix>-00000.tfrecord.gz``, ..."""
    return re.compile(re.escape(prefix) + _RECORD_FILE + "$")


def decode_patch(
    record: bytes, bands: Sequence[str], shape: tuple[int, int], where: str, grid: str
) -> np.ndarray:
    """One image-export record as a ``(height, width, bands)`` float32 patch.

    Args:
        record: The serialized Example.
        bands: Bands to stack, in this order.
        shape: ``(h + ky, w + kx)`` the mixer and kernel give.
        where: The file and record, for messages.
        grid: The mixer (and kernel) the shape comes from, for messages.

    Raises:
        MixerError: When the record lacks a band or a band holds the wrong number of values.
    """
    height, width = shape
    features = decode_example(record)
    patch = np.empty((height, width, len(bands)), dtype=np.float32)
    for channel, band in enumerate(bands):
        values = features.get(band)
        if values is None:
            raise MixerError(
                f"{where} has no band {band!r} (it has {sorted(features)}); choose bands it "
                "has or re-export"
            )
        if len(values) != height * width:
            raise MixerError(
                f"{where} band {band!r} holds {len(values)} values, not (h+ky)(w+kx) = "
                f"{height}x{width} = {height * width} for {grid}; the files do not match the mixer"
            )
        patch[:, :, channel] = np.asarray(values).reshape(height, width)
    return patch


@dataclass(frozen=True)
class ImageExport:
    """A scene exported in Earth Engine's image-export format.

    Attributes:
        name: Scene name (its folder name).
        folder: The scene folder, protocol stripped.
        prefix: File prefix shared by the patch files and the mixer.
        filesystem: The fsspec filesystem holding it.
        expected_kernel_size: ``kernelSize [kx, ky]`` the caller expects, checked against the
            files; ``None`` infers it from the first record.
    """

    name: str
    folder: str
    prefix: str
    filesystem: Any = field(repr=False)
    expected_kernel_size: tuple[int, int] | None = None

    @property
    def mixer_path(self) -> str:
        """Path of ``<prefix>-mixer.json``."""
        return posixpath.join(self.folder, self.prefix + MIXER_SUFFIX)

    @cached_property
    def mixer(self) -> Mixer:
        """The parsed mixer."""
        with self.filesystem.open(self.mixer_path, "rb") as handle:
            try:
                content = json.load(handle)
            except json.JSONDecodeError as error:
                raise MixerError(f"{self.mixer_path}: not JSON ({error})") from error
        return Mixer.from_json(content, source=self.mixer_path)

    @cached_property
    def file_paths(self) -> tuple[str, ...]:
        """The patch files in name order (the order Earth Engine wrote the patches in)."""
        pattern = record_file_pattern(self.prefix)
        names = [
            path
            for path in self.filesystem.ls(self.folder, detail=False)
            if pattern.match(posixpath.basename(path))
        ]
        if not names:
            raise MixerError(
                f"{self.folder}: the mixer {posixpath.basename(self.mixer_path)} has no patch "
                f"files {self.prefix}-00000.tfrecord.gz...; re-run the export of scene {self.name}"
            )
        return tuple(sorted(names))

    @cached_property
    def _first_record(self) -> dict[str, Any]:
        path = self.file_paths[0]
        for record in self._records(path):
            return decode_example(record)
        raise MixerError(f"{path}: holds no record; re-run the export of scene {self.name}")

    @cached_property
    def bands(self) -> tuple[str, ...]:
        """Feature names of the first record, in file order."""
        return tuple(self._first_record)

    @cached_property
    def kernel_size(self) -> tuple[int, int]:
        """``kernelSize [kx, ky]``: given (and checked) or inferred from the first record."""
        first_band = self.bands[0]
        count = len(self._first_record[first_band])
        if self.expected_kernel_size is None:
            return infer_kernel_size(self.mixer, count)
        kernel = (int(self.expected_kernel_size[0]), int(self.expected_kernel_size[1]))
        height, width = buffered_shape(self.mixer, kernel)
        if height * width != count:
            raise MixerError(
                f"{self.file_paths[0]}: record 0 band {first_band!r} holds {count} values, but "
                f"kernel_size {list(kernel)} with patchDimensions "
                f"[{self.mixer.patch_width}, {self.mixer.patch_height}] needs {height}x{width}"
                f" = {height * width}; fix load_args.kernel_size or re-export the scene"
            )
        return kernel

    @property
    def patch_shape(self) -> tuple[int, int]:
        """``(h + ky, w + kx)`` of one buffered patch."""
        return buffered_shape(self.mixer, self.kernel_size)

    def truth(self) -> gpd.GeoDataFrame | None:
        """The ground truth (``truth.geojson``, EPSG:4326), or ``None`` when there is none."""
        path = posixpath.join(self.folder, TRUTH_FILE)
        if not self.filesystem.exists(path):
            return None
        with self.filesystem.open(path, "rb") as handle:
            return gpd.read_file(handle)

    def iter_patches(
        self, bands: Sequence[str] | None = None, batch_size: int | None = None
    ) -> Iterator[np.ndarray]:
        """Stream the buffered patches in export order (row-major over the mosaic).

        Args:
            bands: Bands to stack, in this order; ``None`` for :attr:`bands`.
            batch_size: Yield ``(n, h + ky, w + kx, C)`` batches of up to this many patches
                instead of single ``(h + ky, w + kx, C)`` patches.

        Yields:
            float32 arrays.

        Raises:
            MixerError: When a record lacks a band or holds the wrong number of values, or when
                the files hold more or fewer records than ``totalPatches``, naming the file and
                the record.
        """
        names = tuple(bands) if bands is not None else self.bands
        height, width = self.patch_shape
        batch: list[np.ndarray] = []
        index = 0
        for path in self.file_paths:
            for position, record in enumerate(self._records(path)):
                if index >= self.mixer.total_patches:
                    raise MixerError(
                        f"{path}: record {position} is patch {index}, beyond totalPatches "
                        f"{self.mixer.total_patches} of {self.mixer_path}; the files do not "
                        "belong to this mixer (remove stale files and re-export the scene)"
                    )
                patch = decode_patch(
                    record,
                    names,
                    (height, width),
                    f"{path}: record {position} (patch {index})",
                    f"{self.mixer_path} with kernel_size {list(self.kernel_size)}",
                )
                index += 1
                if batch_size is None:
                    yield patch
                    continue
                batch.append(patch)
                if len(batch) == batch_size:
                    yield np.stack(batch)
                    batch = []
        if index != self.mixer.total_patches:
            raise MixerError(
                f"{self.folder}: the patch files hold {index} records but "
                f"{posixpath.basename(self.mixer_path)} says totalPatches "
                f"{self.mixer.total_patches}; a file is missing or truncated, re-export the scene"
            )
        if batch:
            yield np.stack(batch)

    def count_records(self) -> int:
        """Records in all patch files (reads every file once, decodes nothing)."""
        return sum(sum(1 for _ in self._records(path)) for path in self.file_paths)

    def _records(self, path: str) -> Iterator[bytes]:
        try:
            with self.filesystem.open(path, "rb") as handle:
                yield from iter_records(open_record_stream(handle))
        except (CorruptRecordError, EOFError, OSError) as error:
            # A torn file (an interrupted download, a full disk) cannot be segmented past the
            # damage: say which scene and what to do, not only where the bytes went wrong.
            raise MixerError(
                f"scene {self.name!r}: {path} is damaged ({error}); delete the scene folder "
                f"{self.folder} and export it again (kedro run --pipelines gee_export)"
            ) from error
