"""``RunFoldersDataset``: where training keeps Sacred runs and checkpoints, and the MongoDB URL.

Sacred's observers and Keras' checkpoints write files themselves, so the train nodes cannot hand
them to the catalog; this load-only dataset puts their folders in the catalog instead (Kedro
resolves ``path`` against the project folder) and carries the optional MongoDB credentials
through Kedro's credentials mechanism.

Example catalog entry::

    train_run_folders:
      type: dam_detection.pipelines.train.run_folders.RunFoldersDataset
      path: data/06_models
      credentials: sacred_mongo   # optional: {url: mongodb://..., db_name: sacred}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class RunFoldersDataset(AbstractDataset[None, dict[str, Any]]):
    """Load-only: ``{"sacred", "checkpoints", "mongo_url", "mongo_db"}``.

    Args:
        path: Folder under which ``sacred/`` (FileStorageObserver) and ``checkpoints/`` live.
        sacred_subfolder: Name of the Sacred folder under ``path``; ``None`` disables file
            storage.
        checkpoint_subfolder: Name of the checkpoints folder under ``path``.
        credentials: Optional ``{"url": "mongodb://host:port", "db_name": "sacred"}`` for a
            ``MongoObserver``.
        metadata: Free-form metadata (Kedro-Viz).
    """

    def __init__(
        self,
        *,
        path: str,
        sacred_subfolder: str | None = "sacred",
        checkpoint_subfolder: str = "checkpoints",
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._sacred = sacred_subfolder
        self._checkpoints = checkpoint_subfolder
        self._credentials = dict(credentials or {})
        self.metadata = metadata
        if self._credentials and not self._credentials.get("url"):
            raise DatasetError(
                "the Sacred MongoDB credentials have no 'url': set e.g. "
                "url: mongodb://localhost:27017 in conf/local/credentials.yml"
            )

    def load(self) -> dict[str, Any]:
        """The absolute folders and MongoDB settings."""
        return {
            "sacred": str(self._path / self._sacred) if self._sacred else None,
            "checkpoints": str(self._path / self._checkpoints),
            "mongo_url": self._credentials.get("url"),
            "mongo_db": self._credentials.get("db_name", "sacred"),
        }

    def save(self, data: None) -> None:
        """Not supported: the folders are written by Sacred and Keras."""
        raise DatasetError("RunFoldersDataset is read-only")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {
            "path": str(self._path),
            "sacred_subfolder": self._sacred,
            "checkpoint_subfolder": self._checkpoints,
            "mongo": bool(self._credentials),
        }
