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

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from pydantic import ValidationError

from dam_detection.datasets.download import DownloadSpec, ensure_downloaded
from dam_detection.datasets.inventories import INVENTORIES, InventoryName, inventory_options
from dam_detection.parameters.model import Settings

logger = logging.getLogger(__name__)


class PointSourceSettings(Settings):
    """The reader options of one entry of ``point_sources``: how its rows become points."""

    inventory: InventoryName | None = None
    """A published inventory (``nid``, ``nid_2018``, ``grand``, ``goodd``, ``geodar``, ``nbi``,
    ``nbi_2018``): its format's reader options fill the ones left unset, and its attribution
    goes into the ingest report (``datasets/inventories.py``)."""
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
    decision_column: str | None = None
    """A review page's export: the column holding each row's decision (``confirmed`` rows are
    dams, ``rejected`` rows hard negatives of this source's ``kind``, others are left out and
    counted); ``null``: every row has the source's kind and label."""
    keep_navigation_control: list[str] | None = None
    """``nbi_ascii``: item 38 codes kept (bridges over waterways); ``null``: ``["0", "1"]``."""

    def reader_options(self) -> dict[str, Any]:
        """The settings as the source reader takes them (unset options left out)."""
        return self.model_dump(exclude_none=True, exclude={"inventory"})

    @property
    def attribution(self) -> str | None:
        """The citation the named inventory's publisher asks for."""
        return INVENTORIES[self.inventory].attribution if self.inventory else None


@dataclass(frozen=True)
class PointSource:
    """One loaded inventory.

    Attributes:
        frame: What the source's dataset loaded.
        settings: How to read its rows.
    """

    frame: pd.DataFrame
    settings: PointSourceSettings


class PointSourcesDataset(AbstractDataset[Mapping[str, Any], dict[str, PointSource]]):
    """Source name to its loaded frame and reader options, in declaration order.

    Saving writes only the sources marked ``published_by: planet``: the simulated planet
    publishes its inventories through this entry, so that Kedro runs the publication before
    anything reads them. A user's inventory is never written.

    Args:
        sources: Name to ``{"dataset": <dataset config>, **reader options}`` (the options are
            the fields of :class:`PointSourceSettings`), optionally with ``download: {url,
            sha256}``: the file is fetched to the dataset's ``filepath`` when missing, and
            checked against the pinned checksum (:mod:`.download`); ``published_by:
            planet`` for a file the simulated planet writes; ``optional: true`` for a file that
            may not exist yet (a review page's export): skipped, and logged, until it does.
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
        self._downloads: dict[str, tuple[DownloadSpec, Path]] = {}
        self._published: set[str] = set()
        self._optional: set[str] = set()
        for name, entry in sources.items():
            options = dict(entry)
            dataset = options.pop("dataset", None)
            publisher = options.pop("published_by", None)
            if options.pop("optional", False):
                self._optional.add(name)
            if publisher not in (None, "planet"):
                raise DatasetError(
                    f"point source {name!r}: published_by must be 'planet' (the simulated "
                    f"planet writes the file) or left out, got {publisher!r}"
                )
            if publisher == "planet":
                self._published.add(name)
            if not isinstance(dataset, Mapping):
                raise DatasetError(
                    f"point source {name!r} has no 'dataset': give the dataset that loads its "
                    "file, e.g. {type: dam_detection.datasets.VectorPointsDataset, filepath: ...}"
                )
            download = options.pop("download", None)
            if options.get("inventory") is not None:
                try:
                    options = inventory_options(options["inventory"], options)
                except KeyError as error:
                    raise DatasetError(f"point source {name!r}: {error.args[0]}") from None
            try:
                self._settings[name] = PointSourceSettings.model_validate(options)
            except ValidationError as error:
                raise DatasetError(f"point source {name!r}: {error}") from None
            if download is not None:
                self._downloads[name] = (_download_spec(name, download), _filepath(name, dataset))
            self._datasets[name] = AbstractDataset.from_config(
                f"point_sources.{name}", dict(dataset)
            )
        self.metadata = metadata

    def load(self) -> dict[str, PointSource]:
        """Every source's frame and options (downloading the files that are to be fetched)."""
        for name, (spec, destination) in self._downloads.items():
            ensure_downloaded(spec, destination, name)
        loaded = {}
        for name, dataset in self._datasets.items():
            if name in self._optional and not dataset.exists():
                logger.info("point source %r has no file yet (optional): skipped", name)
                continue
            loaded[name] = PointSource(dataset.load(), self._settings[name])
        return loaded

    def save(self, data: Mapping[str, Any]) -> None:
        """Write the published sources of ``data`` (source name to what its dataset saves).

        Raises:
            DatasetError: If ``data`` names a declared source that is not ``published_by:
                planet`` (a user's inventory is never overwritten).
        """
        for name, content in data.items():
            if name not in self._datasets:
                logger.info("the planet published %r; point_sources does not read it", name)
                continue
            if name not in self._published:
                raise DatasetError(
                    f"point source {name!r} is a user's inventory and is never written; mark "
                    "it published_by: planet only if the simulated planet is to write it"
                )
            self._datasets[name].save(content)

    def _exists(self) -> bool:
        return all(
            dataset.exists()
            for name, dataset in self._datasets.items()
            if name not in self._optional
        )

    def _describe(self) -> dict[str, Any]:
        return {name: dataset._describe() for name, dataset in self._datasets.items()}


def _download_spec(name: str, download: Any) -> DownloadSpec:
    if not isinstance(download, Mapping) or not download.get("url"):
        raise DatasetError(
            f"point source {name!r}: download needs a url, e.g. download: {{url: https://..., "
            "sha256: <optional hex digest>}"
        )
    unknown = set(download) - {"url", "sha256", "timeout_s"}
    if unknown:
        raise DatasetError(
            f"point source {name!r}: unknown download keys {sorted(unknown)}; allowed: url, "
            "sha256, timeout_s"
        )
    return DownloadSpec(**dict(download))


def _filepath(name: str, dataset: Mapping[str, Any]) -> Path:
    filepath = dataset.get("filepath")
    if not isinstance(filepath, str) or "://" in filepath:
        raise DatasetError(
            f"point source {name!r}: a download needs the dataset's local filepath to put the "
            "file at"
        )
    return Path(filepath)
