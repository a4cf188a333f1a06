"""Planned exports that carry a fingerprint of the settings that planned them.

``overwrite: false`` lets a re-run skip files that are already complete. That is only right
when the files were made with the same settings: a node that wraps its plan in these types lets
the dataset tell, rewriting everything when the fingerprint on disk differs and resuming when it
matches. A plain ``dict`` still works (no fingerprint, files on disk are trusted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from dam_detection.datasets.record_writer import RecordSource
from dam_detection.image_sources.base import SceneExport

#: Hidden file (ignored by listings) holding the fingerprint of the files next to it.
FINGERPRINT_FILE = ".export-fingerprint"


def fingerprint(settings: Any) -> str:
    """A stable SHA-256 of JSON-able settings (dataclasses and tuples as their ``str``/lists)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class PlannedFiles(dict[str, RecordSource]):
    """``TFRecordDataset`` input: stem to records, plus :attr:`fingerprint` of the settings."""

    def __init__(self, files: Mapping[str, RecordSource], fingerprint: str) -> None:
        super().__init__(files)
        self.fingerprint = fingerprint


class PlannedScenes(dict[str, SceneExport]):
    """``ImageExportDataset`` input: scene name to export, plus each scene's fingerprint."""

    def __init__(self, scenes: Mapping[str, SceneExport], fingerprints: Mapping[str, str]) -> None:
        super().__init__(scenes)
        missing = sorted(set(scenes) - set(fingerprints))
        if missing:
            raise ValueError(f"scenes {missing} have no fingerprint")
        self.fingerprints = dict(fingerprints)
