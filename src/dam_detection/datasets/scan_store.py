"""``ScanStoreDataset``: the folder a region scan's workers write finished tiles into.

Loading gives a :class:`~dam_detection.pipelines.scan.store.TileStore` handle, not data: the
scan's Dask workers write each tile as it finishes (so a scan killed halfway resumes), which no
single ``save`` at the end of a node could do. The catalog still names the folder, and kedro-viz
shows the store as the scan's input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from dam_detection.pipelines.scan.store import TileStore


class ScanStoreDataset(AbstractDataset[None, TileStore]):
    """A scan's tile folder.

    Args:
        path: Local folder (created on load).
        metadata: Free-form metadata (kedro-viz layer).
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> TileStore:
        """The store's handle."""
        self._path.mkdir(parents=True, exist_ok=True)
        return TileStore(self._path)

    def save(self, data: None) -> None:
        """Not supported: workers write tiles through the handle."""
        raise DatasetError("ScanStoreDataset is written tile by tile through its handle")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
