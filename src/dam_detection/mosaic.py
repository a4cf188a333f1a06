"""Geometry of a buffered patch mosaic: where each exported patch's core lies in the scene.

An Earth Engine image export cuts the scene into ``patchDimensions [w, h]`` cores, row-major,
each exported with ``kernelSize [kx, ky]`` pixels of its neighbours around it (``kx / 2``
left and right, ``ky / 2`` above and below). Stitching heatmaps, sliding a classifier and
cutting chips all ask the same questions of that layout; :class:`PatchGrid` answers them once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dam_detection.mixer import Mixer, MixerError, buffered_shape


@dataclass(frozen=True)
class PatchGrid:
    """The patches of one scene export.

    Attributes:
        mixer: The scene's mixer (patch size, patches per row, total).
        kernel_size: ``kernelSize [kx, ky]`` of the export.
    """

    mixer: Mixer
    kernel_size: tuple[int, int]

    @property
    def halo(self) -> tuple[int, int]:
        """``(rows, cols)`` of buffer around each core: ``(ky / 2, kx / 2)``."""
        return self.kernel_size[1] // 2, self.kernel_size[0] // 2

    @property
    def buffered_shape(self) -> tuple[int, int]:
        """``(height, width)`` of one buffered patch: ``(h + ky, w + kx)``."""
        return buffered_shape(self.mixer, self.kernel_size)

    @property
    def core(self) -> tuple[slice, slice]:
        """Where the unbuffered core lies inside a buffered patch."""
        halo_rows, halo_cols = self.halo
        return (
            slice(halo_rows, halo_rows + self.mixer.patch_height),
            slice(halo_cols, halo_cols + self.mixer.patch_width),
        )

    def core_window(self, index: int) -> tuple[slice, slice]:
        """Where patch ``index``'s core lies in the unbuffered mosaic."""
        row, col = self.mixer.patch_origin(index)
        return slice(row, row + self.mixer.patch_height), slice(col, col + self.mixer.patch_width)

    def last_patch_for(self, windows: np.ndarray, size: int) -> int:
        """The last patch (in export order) holding a pixel of any ``size``-pixel window whose
        top-left mosaic pixels are ``windows`` (``(n, 2)`` rows and columns); at least 0.
        """
        bottom = np.minimum(windows[:, 0] + size, self.mixer.height_px) - 1
        right = np.minimum(windows[:, 1] + size, self.mixer.width_px) - 1
        inside = (bottom >= np.maximum(windows[:, 0], 0)) & (right >= np.maximum(windows[:, 1], 0))
        needed = (
            bottom // self.mixer.patch_height
        ) * self.mixer.patches_per_row + right // self.mixer.patch_width
        return int(min(needed[inside].max(initial=0), self.mixer.total_patches - 1))

    def check_patch(self, shape: tuple[int, ...], index: int, scene: str = "") -> None:
        """Raise :class:`MixerError` unless a patch's ``(height, width, ...)`` fits the grid."""
        expected = self.buffered_shape
        if tuple(shape[:2]) != expected:
            where = f"scene {scene!r}: " if scene else ""
            raise MixerError(
                f"{where}patch {index} has shape {tuple(shape[:2])}, the mixer and kernelSize "
                f"{list(self.kernel_size)} give {expected}"
            )

    def check_count(self, count: int, scene: str) -> None:
        """Raise :class:`MixerError` unless the files held exactly ``totalPatches`` patches."""
        if count != self.mixer.total_patches:
            raise MixerError(
                f"scene {scene!r}: the files hold {count} patches, the mixer says totalPatches "
                f"{self.mixer.total_patches}"
            )
