"""Point files for ``ingest_points``: shapefile (bare, folder or zip), GeoJSON, GeoPackage,
GeoParquet and CSV, read with pyogrio/geopandas; GeoParquet and GeoJSON also written, atomically.

kedro-datasets' ``geopandas.GenericDataset`` cannot open a bare ``.shp`` through fsspec (its
``.shx``/``.dbf`` siblings stay behind) and importing it switches geopandas to the fiona engine,
so this dataset reads local paths directly with pyogrio. The path of the file read is kept in
``frame.attrs["source_file"]`` so that later errors can name it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import geopandas as gpd
import pandas as pd
import pyogrio
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

#: Formats this dataset reads; ``auto`` picks one from the file name.
PointFormat = Literal["auto", "shapefile", "geojson", "gpkg", "parquet", "csv"]

_SUFFIX_FORMATS: dict[str, str] = {
    ".shp": "shapefile",
    ".zip": "shapefile",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".csv": "csv",
    ".txt": "csv",
}


def detect_format(filepath: str) -> str:
    """Name the format of ``filepath`` from its suffix (a folder is a shapefile folder).

    Args:
        filepath: Local path of the file or folder.

    Returns:
        One of ``shapefile``, ``geojson``, ``gpkg``, ``parquet``, ``csv``.

    Raises:
        DatasetError: If the suffix is unknown.
    """
    if Path(filepath).is_dir():
        return "shapefile"
    suffix = PurePosixPath(filepath).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise DatasetError(
            f"cannot tell the format of {filepath!r} from its suffix {suffix!r}: set "
            f"load_args.format to one of {sorted(set(_SUFFIX_FORMATS.values()))} in its "
            "catalog entry"
        )
    return _SUFFIX_FORMATS[suffix]


def read_points_file(
    filepath: str, file_format: str = "auto", **read_args: Any
) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a point file as a (Geo)DataFrame; CSV comes back as a plain DataFrame.

    Args:
        filepath: Local path: ``.shp``, a folder holding one shapefile, a zipped shapefile,
            ``.geojson``, ``.gpkg``, ``.parquet`` (GeoParquet) or ``.csv``.
        file_format: ``auto`` or one of the formats in :data:`PointFormat`.
        **read_args: Passed to ``pyogrio.read_dataframe`` or ``pandas.read_csv``.

    Returns:
        The table, with ``attrs["source_file"] = filepath``. The CRS is ``None`` when the file
        declares none (a shapefile without ``.prj``).

    Raises:
        DatasetError: If the file is missing or cannot be read.
    """
    if not Path(filepath).exists():
        raise DatasetError(f"point file {filepath!r} does not exist: fix its catalog filepath")
    kind = detect_format(filepath) if file_format == "auto" else file_format
    try:
        if kind == "csv":
            frame: pd.DataFrame = pd.read_csv(filepath, **read_args)
        elif kind == "parquet":
            frame = gpd.read_parquet(filepath, **read_args)
        else:
            path = f"/vsizip/{filepath}" if filepath.lower().endswith(".zip") else filepath
            frame = pyogrio.read_dataframe(path, use_arrow=True, **read_args)
    except Exception as error:  # noqa: BLE001 - re-raised with the file named
        raise DatasetError(f"cannot read point file {filepath!r} as {kind}: {error}") from error
    frame.attrs["source_file"] = filepath
    return frame


def write_points_file(frame: pd.DataFrame, filepath: str, **write_args: Any) -> None:
    """Write GeoParquet, GeoJSON, GeoPackage or CSV atomically: a temporary file, then a rename.

    Args:
        frame: Points to write (a plain DataFrame for CSV).
        filepath: Local target path.
        **write_args: Passed to ``GeoDataFrame.to_parquet``, ``pyogrio.write_dataframe`` or
            ``DataFrame.to_csv``.

    Raises:
        DatasetError: If the suffix names a format this writer does not write.
    """
    kind = detect_format(filepath)
    if kind not in ("parquet", "geojson", "gpkg", "csv"):
        raise DatasetError(
            f"can only write GeoParquet, GeoJSON, GeoPackage or CSV, not {filepath!r}"
        )
    target = Path(filepath)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(handle)
    try:
        if kind == "parquet":
            frame.to_parquet(temporary, **write_args)
        elif kind == "csv":
            frame.to_csv(temporary, index=False, **write_args)
        else:
            Path(temporary).unlink()  # GDAL refuses to overwrite an existing file
            if kind == "gpkg":  # the layer is named after the target, not the temporary file
                write_args = {"layer": target.stem, **write_args}
            driver = "GeoJSON" if kind == "geojson" else "GPKG"
            pyogrio.write_dataframe(frame, temporary, driver=driver, **write_args)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


class VectorPointsDataset(AbstractDataset[gpd.GeoDataFrame, pd.DataFrame]):
    """Point locations in a vector or table file, in the style of kedro-datasets.

    Example catalog entries::

        nid_dams:
          type: dam_detection.datasets.VectorPointsDataset
          filepath: data/01_raw/points/nid_dams_2018.shp

        my_dams_csv:
          type: dam_detection.datasets.VectorPointsDataset
          filepath: data/01_raw/my_dams.csv
          load_args: {sep: ";"}
    """

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one local point file.

        Args:
            filepath: Local path (``file://`` allowed).
            load_args: ``format`` (default ``auto``) plus reader arguments.
            save_args: Writer arguments (GeoParquet, GeoJSON, GeoPackage, CSV).
            metadata: Free-form metadata, ignored by Kedro.

        Raises:
            DatasetError: If the path uses a remote protocol.
        """
        protocol, path = get_protocol_and_path(filepath)
        if protocol not in ("file", "local"):
            raise DatasetError(
                f"VectorPointsDataset reads local files only, got {filepath!r}: copy the file "
                "into data/01_raw/ or use kedro-datasets' geopandas.GenericDataset"
            )
        self._filepath = PurePosixPath(path)
        self._load_args = dict(load_args or {})
        self._format = self._load_args.pop("format", "auto")
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """Read the points file in the format its name says."""
        return read_points_file(
            get_filepath_str(self._filepath, "file"), self._format, **self._load_args
        )

    def save(self, data: pd.DataFrame) -> None:
        """Write the points file in the format its name says (atomically)."""
        write_points_file(data, get_filepath_str(self._filepath, "file"), **self._save_args)

    def _exists(self) -> bool:
        return Path(str(self._filepath)).exists()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "format": self._format,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
