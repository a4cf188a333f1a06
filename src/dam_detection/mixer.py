"""Earth Engine's image-export "mixer": the sidecar that says where every patch goes.

``Export.image(fileFormat='TFRecord')`` writes ``<prefix>-00000.tfrecord.gz``... holding one
``tf.train.Example`` per patch, row-major (left to right, then top to bottom), and
``<prefix>-mixer.json``::

    {"projection": {"crs": "EPSG:32612",
                    "affine": {"doubleMatrix": [xScale, xShear, xTranslation,
                                                yShear, yScale, yTranslation]}},
     "patchDimensions": [w, h], "patchesPerRow": n, "totalPatches": m}

The affine maps pixel (col, row) of the *unbuffered* mosaic to CRS coordinates. With
``kernelSize [kx, ky]`` every patch also carries ``kx / 2`` extra pixels left and right and
``ky / 2`` above and below, so a band holds ``(h + ky) * (w + kx)`` values. The mixer does not
record the kernel size; readers infer it from the value count or are told it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class MixerError(ValueError):
    """A mixer is malformed or disagrees with the patch files it describes."""


@dataclass(frozen=True)
class Mixer:
    """A parsed mixer.

    Attributes:
        crs: Coordinate reference system, e.g. ``EPSG:4326``.
        affine: ``[xScale, xShear, xTranslation, yShear, yScale, yTranslation]``.
        patch_width: Unbuffered patch width in pixels.
        patch_height: Unbuffered patch height in pixels.
        patches_per_row: Patches in one row of the mosaic.
        total_patches: Patches in the mosaic.
    """

    crs: str
    affine: tuple[float, float, float, float, float, float]
    patch_width: int
    patch_height: int
    patches_per_row: int
    total_patches: int

    @property
    def rows(self) -> int:
        """Rows of patches in the mosaic."""
        return math.ceil(self.total_patches / self.patches_per_row)

    @property
    def width_px(self) -> int:
        """Mosaic width in pixels (unbuffered)."""
        return self.patches_per_row * self.patch_width

    @property
    def height_px(self) -> int:
        """Mosaic height in pixels (unbuffered)."""
        return self.rows * self.patch_height

    def patch_origin(self, index: int) -> tuple[int, int]:
        """Top-left ``(row, col)`` pixel of unbuffered patch ``index`` in the mosaic."""
        if not 0 <= index < self.total_patches:
            raise IndexError(f"patch {index} outside 0..{self.total_patches - 1}")
        row, col = divmod(index, self.patches_per_row)
        return row * self.patch_height, col * self.patch_width

    def pixel_to_crs(self, col: Any, row: Any) -> tuple[Any, Any]:
        """CRS coordinates of pixel positions (floats or arrays; ``+ 0.5`` for pixel centres)."""
        x_scale, x_shear, x_0, y_shear, y_scale, y_0 = self.affine
        return x_0 + col * x_scale + row * x_shear, y_0 + col * y_shear + row * y_scale

    def to_json(self) -> dict[str, Any]:
        """The mixer as Earth Engine writes it."""
        return {
            "projection": {"crs": self.crs, "affine": {"doubleMatrix": list(self.affine)}},
            "patchDimensions": [self.patch_width, self.patch_height],
            "patchesPerRow": self.patches_per_row,
            "totalPatches": self.total_patches,
        }

    @classmethod
    def from_json(cls, content: Mapping[str, Any], source: str = "mixer.json") -> Mixer:
        """Parse and check a mixer.

        Args:
            content: The decoded JSON.
            source: File name used in error messages.

        Raises:
            MixerError: Naming the file and the field that is missing or wrong.
        """
        try:
            projection = content["projection"]
            crs = str(projection["crs"])
            affine = tuple(float(v) for v in projection["affine"]["doubleMatrix"])
            width, height = (int(v) for v in content["patchDimensions"])
            per_row = int(content["patchesPerRow"])
            total = int(content["totalPatches"])
        except (KeyError, TypeError, ValueError) as error:
            raise MixerError(
                f"{source}: not an Earth Engine mixer ({error!r}); expected projection.crs, "
                "projection.affine.doubleMatrix, patchDimensions, patchesPerRow, totalPatches"
            ) from error
        if len(affine) != 6:
            raise MixerError(f"{source}: affine.doubleMatrix has {len(affine)} values, not 6")
        if min(width, height, per_row, total) <= 0:
            raise MixerError(
                f"{source}: patchDimensions, patchesPerRow and totalPatches must be positive"
            )
        return cls(crs, affine, width, height, per_row, total)


def mosaic_layout(
    width_px: int, height_px: int, patch_dimensions: tuple[int, int]
) -> tuple[int, int]:
    """Patches per row and rows of patches for a region, as Earth Engine tiles it.

    Border tiles that do not fit a whole patch are dropped.

    Returns:
        ``(patches_per_row, rows)``.

    Raises:
        ValueError: If the region is smaller than one patch.
    """
    patch_width, patch_height = patch_dimensions
    per_row, rows = width_px // patch_width, height_px // patch_height
    if per_row == 0 or rows == 0:
        raise ValueError(
            f"a {width_px}x{height_px} px region holds no whole {patch_width}x{patch_height} patch"
        )
    return per_row, rows


def buffered_shape(mixer: Mixer, kernel_size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of one buffered patch: ``(h + ky, w + kx)``."""
    kernel_x, kernel_y = kernel_size
    return mixer.patch_height + kernel_y, mixer.patch_width + kernel_x


def infer_kernel_size(mixer: Mixer, values_per_band: int) -> tuple[int, int]:
    """The square ``kernelSize [k, k]`` for which a band holds ``values_per_band`` values.

    Raises:
        MixerError: If no even ``k >= 0`` gives ``(h + k) * (w + k) == values_per_band``.
    """
    width, height = mixer.patch_width, mixer.patch_height
    # (h + k)(w + k) = n  ->  k^2 + (w + h) k + (w h - n) = 0
    disc = (width + height) ** 2 - 4 * (width * height - values_per_band)
    if disc >= 0:
        kernel = round((-(width + height) + math.sqrt(disc)) / 2)
        if kernel >= 0 and (height + kernel) * (width + kernel) == values_per_band:
            return kernel, kernel
    raise MixerError(
        f"a band with {values_per_band} values does not fit patchDimensions [{width}, {height}] "
        "with any square kernelSize; the patch files do not belong to this mixer"
    )
