"""``PointSourcesDataset``: every point inventory ``ingest_points`` reads, declared once.

Each source is one entry with the dataset that loads its file and the reader options that turn
its rows into points, so adding an inventory is a few lines of catalog and the pipeline is
built without reading configuration (an environment can replace the whole entry)::

    point_sources:
      type: dam_detection.datasets.PointSourcesDataset
      sources:                      # order = priority when duplicates merge
        nid_dams:
          dataset: {type: dam_detection.datasets.VectorPointsDataset,
                    filepath: data/01_raw/points/nid_dams_2018.shp}
          reader: vector
          kind: dam
          id_prefix: nid
          id_column: FID
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from pydantic import ValidationError

from dam_detection.parameters.model import Settings


class PointSourceSettings(Settings):
    """The reader options of one entry of ``point_sources``: how its rows become points."""

    reader: Literal["vector", "table", "nbi_ascii"]
    """``vector`` (shapefile, GeoJSON, GeoPackage, GeoParquet), ``table`` (CSV with lon/lat
    columns) or ``nbi_ascii`` (FHWA NBI fixed-width)."""
    kind: str
    """What the points are: ``dam``, ``bridge``, ..."""
    label: int | None = None
    """1 dam, 0 not a dam; ``null``: 1 for ``kind: dam``, else 0."""
    id_prefix: str | None = None
    """``point_id`` is ``<id_prefix>:<id>``; ``null``: the source name."""
    id_column: str | None = None
    """Column holding the record id; ``null``: the row's position (NBI: state + structure)."""
    name_column: str | None = None
    """Column holding a name; ``null``: no names (NBI: features intersected)."""
    assumed_crs: str | None = None
    """CRS of a vector file that declares none (a shapefile without ``.prj``)."""
    lon_column: str | None = None
    """``table``: longitude (or x) column; ``null``: ``lon``."""
    lat_column: str | None = None
    """``table``: latitude (or y) column; ``null``: ``lat``."""
    crs: str | None = None
    """``table``/``nbi_ascii``: CRS of the coordinates; ``null``: EPSG:4326."""
    keep_navigation_control: list[str] | None = None
    """``nbi_ascii``: item 38 codes kept (bridges over waterways); ``null``: ``["0", "1"]``."""

    def reader_options(self) -> dict[str, Any]:
        """The settings as the source reader takes them (unset options left out)."""
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class PointSource:
    """One loaded inventory.

    Attributes:
        frame: What the source's dataset loaded.
        settings: How to read its rows.
    """

    frame: pd.DataFrame
    settings: PointSourceSettings


class PointSourcesDataset(AbstractDataset[None, dict[str, PointSource]]):
    """Load-only: source name to its loaded frame and reader options, in declaration order.

    Args:
        sources: Name to ``{"dataset": <dataset config>, **reader options}`` (the options are
            the fields of :class:`PointSourceSettings`).
        metadata: Free-form metadata (Kedro-Viz).

    Raises:
        DatasetError: If a source has no ``dataset`` or its options are invalid.
    """

    def __init__(
        self, *, sources: Mapping[str, Mapping[str, Any]], metadata: dict[str, Any] | None = None
    ) -> None:
        if not sources:
            raise DatasetError("point_sources declares no sources: add at least one inventory")
        self._datasets: dict[str, AbstractDataset] = {}
        self._settings: dict[str, PointSourceSettings] = {}
        for name, entry in sources.items():
            options = dict(entry)
            dataset = options.pop("dataset", None)
            if not isinstance(dataset, Mapping):
                raise DatasetError(
                    f"point source {name!r} has no 'dataset': give the dataset that loads its "
                    "file, e.g. {type: dam_detection.datasets.VectorPointsDataset, filepath: ...}"
                )
            try:
                self._settings[name] = PointSourceSettings.model_validate(options)
            except ValidationError as error:
                raise DatasetError(f"point source {name!r}: {error}") from None
            self._datasets[name] = AbstractDataset.from_config(
                f"point_sources.{name}", dict(dataset)
            )
        self.metadata = metadata

    def load(self) -> dict[str, PointSource]:
        """Every source's frame and options."""
        return {
            name: PointSource(dataset.load(), self._settings[name])
            for name, dataset in self._datasets.items()
        }

    def save(self, data: None) -> None:
        """Not supported: inventories are inputs."""
        raise DatasetError("PointSourcesDataset is read-only")

    def _exists(self) -> bool:
        return all(dataset.exists() for dataset in self._datasets.values())

    def _describe(self) -> dict[str, Any]:
        return {name: dataset._describe() for name, dataset in self._datasets.items()}
