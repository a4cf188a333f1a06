"""``ReviewPageDataset``: a folder holding ``index.html`` and the chips it shows.

Saved whole or not at all: the new page is written beside the old one and swapped in, so a
failed save never leaves a page whose chips are missing, and decisions a reviewer exported from
the old page are not touched (they live in the browser and in the exported file).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from dam_detection.pipelines.scan.review import ReviewPage


class ReviewPageDataset(AbstractDataset[ReviewPage, ReviewPage]):
    """A static review page on local disk.

    Args:
        path: The page's folder (``index.html``, ``chips/``).
        metadata: Free-form metadata (kedro-viz layer).
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def save(self, data: ReviewPage) -> None:
        """Write the page and its chips, then swap the folder in."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        draft = self._path.with_name(f".{self._path.name}.{uuid.uuid4().hex}")
        try:
            draft.mkdir()
            (draft / "index.html").write_text(data.html, encoding="utf-8")
            for name, png in data.chips.items():
                target = draft / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(png)
            old = self._path.with_name(f".{self._path.name}.{uuid.uuid4().hex}.old")
            if self._path.exists():
                self._path.rename(old)
            draft.rename(self._path)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(draft, ignore_errors=True)

    def load(self) -> ReviewPage:
        """The page and its chips as saved."""
        chips = {
            str(path.relative_to(self._path)): path.read_bytes()
            for path in sorted((self._path / "chips").glob("*.png"))
        }
        return ReviewPage((self._path / "index.html").read_text("utf-8"), chips)

    def _exists(self) -> bool:
        return (self._path / "index.html").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
