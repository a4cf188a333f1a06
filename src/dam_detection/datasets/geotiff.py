"""GeoTIFF rasters: plain ones written with tifffile and GeoTIFF tags (no GDAL needed), and
Cloud-Optimized ones written with GDAL's COG driver through rasterio (:func:`write_cog`).

A raster is georeferenced the way Earth Engine's mixer describes a mosaic: an EPSG-coded CRS and
the affine ``[xScale, xShear, xTranslation, yShear, yScale, yTranslation]`` that maps pixel
``(col, row)`` corners to CRS coordinates. North-up rasters get ModelPixelScale + ModelTiepoint
(what every reader understands); sheared or south-up ones get ModelTransformation. The
GeoKeyDirectory names the EPSG code, so QGIS and GDAL place the file without a sidecar.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

import fsspec
import numpy as np
import pyproj
import tifffile
from kedro.io import AbstractDataset, DatasetError

MODEL_PIXEL_SCALE = 33550
MODEL_TIEPOINT = 33922
MODEL_TRANSFORMATION = 34264
GEO_KEY_DIRECTORY = 34735
GDAL_METADATA = 42112
GDAL_NODATA = 42113
# GeoKey ids and values from the GeoTIFF 1.1 specification.
_GT_MODEL_TYPE, _GT_RASTER_TYPE = 1024, 1025
_GEOGRAPHIC_TYPE, _PROJECTED_CS_TYPE = 2048, 3072
_MODEL_PROJECTED, _MODEL_GEOGRAPHIC, _RASTER_PIXEL_IS_AREA = 1, 2, 1

Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class GeoRaster:
    """A georeferenced raster.

    Attributes:
        data: ``(rows, cols)`` or ``(rows, cols, bands)`` array, rows north to south.
        crs: EPSG-coded CRS, e.g. ``EPSG:32612``.
        affine: ``[xScale, xShear, xTranslation, yShear, yScale, yTranslation]`` of pixel corners.
        band_names: Optional band descriptions, shown by QGIS and ``gdalinfo``.
        nodata: Optional no-data value.
    """

    data: np.ndarray
    crs: str
    affine: Affine
    band_names: tuple[str, ...] = ()
    nodata: float | None = None


def epsg_code(crs: str) -> int:
    """The EPSG code of ``crs``.

    Raises:
        ValueError: If the CRS has no EPSG code (GeoTIFF keys here carry only EPSG codes).
    """
    code = pyproj.CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise ValueError(f"CRS {crs!r} has no EPSG code; export the scene in an EPSG-coded CRS")
    return code


def geotiff_tags(crs: str, affine: Affine) -> list[tuple[int, str, int, Any, bool]]:
    """Tifffile ``extratags`` that georeference a raster (see the module docstring)."""
    x_scale, x_shear, x_0, y_shear, y_scale, y_0 = affine
    if x_shear == 0 and y_shear == 0 and x_scale > 0 and y_scale < 0:
        placement = [
            (MODEL_PIXEL_SCALE, "d", 3, (x_scale, -y_scale, 0.0), False),
            (MODEL_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, x_0, y_0, 0.0), False),
        ]
    else:
        matrix = (x_scale, x_shear, 0, x_0, y_shear, y_scale, 0, y_0, 0, 0, 0, 0, 0, 0, 0, 1)
        placement = [(MODEL_TRANSFORMATION, "d", 16, tuple(float(v) for v in matrix), False)]
    code = epsg_code(crs)
    geographic = pyproj.CRS.from_epsg(code).is_geographic
    keys = [
        (_GT_MODEL_TYPE, 0, 1, _MODEL_GEOGRAPHIC if geographic else _MODEL_PROJECTED),
        (_GT_RASTER_TYPE, 0, 1, _RASTER_PIXEL_IS_AREA),
        (_GEOGRAPHIC_TYPE if geographic else _PROJECTED_CS_TYPE, 0, 1, code),
    ]
    directory = [1, 1, 0, len(keys)] + [value for key in keys for value in key]
    return [*placement, (GEO_KEY_DIRECTORY, "H", len(directory), tuple(directory), False)]


def _gdal_metadata(band_names: tuple[str, ...]) -> str:
    items = "".join(
        f'<Item name="DESCRIPTION" sample="{i}" role="description">{escape(name)}</Item>'
        for i, name in enumerate(band_names)
    )
    return f"<GDALMetadata>{items}</GDALMetadata>"


def write_geotiff(path: str | os.PathLike[str], raster: GeoRaster, **save_args: Any) -> None:
    """Write ``raster`` to a local GeoTIFF (tiled, zlib-compressed unless told otherwise)."""
    tags = geotiff_tags(raster.crs, raster.affine)
    if raster.band_names:
        tags.append((GDAL_METADATA, "s", 0, _gdal_metadata(raster.band_names), False))
    if raster.nodata is not None:
        tags.append((GDAL_NODATA, "s", 0, f"{raster.nodata:g}", False))
    options = {"tile": (256, 256), "compression": "zlib", **save_args}
    planar = "contig" if raster.data.ndim == 3 else None
    tifffile.imwrite(
        path,
        raster.data,
        photometric="minisblack",
        planarconfig=planar,
        extratags=tags,
        metadata=None,
        **options,
    )


def write_cog(
    path: str | os.PathLike[str],
    raster: GeoRaster,
    *,
    compress: str = "DEFLATE",
    blocksize: int = 256,
) -> None:
    """Write ``raster`` as a Cloud-Optimized GeoTIFF with GDAL's COG driver (via rasterio).

    Tiled, compressed, with internal overviews (averaged, down to one tile), the no-data value
    and band descriptions, and the COG layout (IFDs first, overviews before the full image), so
    QGIS and web viewers read only the tiles and the zoom level they show. Float16 becomes
    float32: GDAL 3.10 stores no half floats.
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as copy_dataset
    from rasterio.transform import Affine as RasterioAffine

    data = np.asarray(raster.data)
    if data.dtype == np.float16:
        data = data.astype(np.float32)
    bands = data[np.newaxis] if data.ndim == 2 else np.moveaxis(data, -1, 0)
    x_scale, x_shear, x_0, y_shear, y_scale, y_0 = raster.affine
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": bands.dtype,
        "crs": rasterio.crs.CRS.from_user_input(raster.crs),
        "transform": RasterioAffine(x_scale, x_shear, x_0, y_shear, y_scale, y_0),
        "nodata": raster.nodata,
    }
    with MemoryFile() as memory, memory.open(**profile) as draft:
        draft.write(bands)
        for index, name in enumerate(raster.band_names, start=1):
            draft.set_band_description(index, name)
        copy_dataset(
            draft, str(path), driver="COG", COMPRESS=compress, BLOCKSIZE=blocksize,
            OVERVIEWS="AUTO", RESAMPLING="AVERAGE",
        )  # fmt: skip


def read_geotiff(path: str | os.PathLike[str]) -> GeoRaster:
    """Read a GeoTIFF written by :func:`write_geotiff` (or any EPSG-coded north-up GeoTIFF)."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if not isinstance(page, tifffile.TiffPage):
            raise DatasetError(f"{path}: the first image is not a full TIFF page")
        data = page.asarray()
        tags = {tag.code: tag.value for tag in page.tags.values()}
    if GEO_KEY_DIRECTORY not in tags:
        raise DatasetError(f"{path} has no GeoKeyDirectory tag: not a GeoTIFF")
    directory = list(tags[GEO_KEY_DIRECTORY])
    keys = {directory[i]: directory[i + 3] for i in range(4, 4 + 4 * directory[3], 4)}
    code = keys.get(_PROJECTED_CS_TYPE, keys.get(_GEOGRAPHIC_TYPE))
    if MODEL_TRANSFORMATION in tags:
        m = tags[MODEL_TRANSFORMATION]
        affine = (m[0], m[1], m[3], m[4], m[5], m[7])
    else:
        scale, tiepoint = tags[MODEL_PIXEL_SCALE], tags[MODEL_TIEPOINT]
        i, j, _, x, y, _ = tiepoint[:6]
        affine = (scale[0], 0.0, x - i * scale[0], 0.0, -scale[1], y + j * scale[1])
    nodata = float(tags[GDAL_NODATA].strip("\x00")) if GDAL_NODATA in tags else None
    names = tuple(_band_names(tags.get(GDAL_METADATA, "")))
    a, b, c, d, e, f = (float(v) for v in affine)
    return GeoRaster(data, f"EPSG:{code}", (a, b, c, d, e, f), names, nodata)


def _band_names(xml: str) -> list[str]:
    import xml.etree.ElementTree as ElementTree

    if not xml:
        return []
    root = ElementTree.fromstring(xml)
    return [item.text or "" for item in root.iter("Item") if item.get("role") == "description"]


class GeoTIFFDataset(AbstractDataset[GeoRaster, GeoRaster]):
    """Kedro dataset for one GeoTIFF (use it inside a ``PartitionedDataset`` for one per scene).

    Example::

        heatmaps:
          type: partitions.PartitionedDataset
          path: data/07_model_output/heatmaps
          dataset: dam_detection.datasets.geotiff.GeoTIFFDataset
          filename_suffix: .tif
    """

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: Local path or fsspec URL of the ``.tif`` file.
            save_args: ``layout: cog`` writes a Cloud-Optimized GeoTIFF (:func:`write_cog`, with
                ``compress`` and ``blocksize``); otherwise extra ``tifffile.imwrite`` options
                (``compression``, ``tile``...) of a plain tiled GeoTIFF.
            credentials: fsspec credentials for remote paths.
            fs_args: Extra fsspec filesystem arguments.
            metadata: Free-form metadata, ignored by Kedro.
        """
        self._filesystem, self._path = fsspec.core.url_to_fs(
            filepath, **(credentials or {}), **(fs_args or {})
        )
        self._filepath = filepath
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    @property
    def _is_local(self) -> bool:
        protocol = self._filesystem.protocol
        return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def load(self) -> GeoRaster:
        """Read the raster and its georeferencing."""
        if self._is_local:
            return read_geotiff(self._path)
        with tempfile.TemporaryDirectory() as folder:
            local = os.path.join(folder, PurePosixPath(self._path).name)
            self._filesystem.get_file(self._path, local)
            return read_geotiff(local)

    def save(self, data: GeoRaster) -> None:
        """Write the raster atomically (temporary name in the folder, then rename)."""
        folder, name = posixpath.split(self._path)
        self._filesystem.makedirs(folder or ".", exist_ok=True)
        if self._is_local:
            temporary = posixpath.join(folder, f".{name}.{os.getpid()}.tmp")
            try:
                self._write(temporary, data)
                os.replace(temporary, self._path)
            finally:
                if os.path.exists(temporary):
                    os.remove(temporary)
            return
        with tempfile.TemporaryDirectory() as local_folder:
            local = os.path.join(local_folder, name)
            self._write(local, data)
            temporary = posixpath.join(folder, f".{name}.tmp")
            self._filesystem.put_file(local, temporary)
            self._filesystem.mv(temporary, self._path)

    def _write(self, path: str, data: GeoRaster) -> None:
        args = dict(self._save_args)
        if args.pop("layout", "plain") == "cog":
            write_cog(path, data, **args)
        else:
            write_geotiff(path, data, **args)

    def _exists(self) -> bool:
        return bool(self._filesystem.exists(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "save_args": self._save_args}
