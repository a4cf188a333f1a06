"""``ExportPlan``: what a planning node hands a writing dataset.

Exports follow one pattern, drawn in docs/architecture.md: a node *plans* (it asks the image
source for lazy record producers and fingerprints the settings and inputs that decide them) and
the dataset *writes* (it runs the producers, each file atomically, in worker processes where the
plan allows). The plan is the only thing that crosses between them:

- ``items``: name to what makes it: a file stem to its record producer for
  :class:`~dam_detection.datasets.tfrecord_dataset.TFRecordDataset`, a scene name to its
  :class:`~dam_detection.image_sources.base.SceneExport` for
  :class:`~dam_detection.datasets.image_export_dataset.ImageExportDataset`;
- ``fingerprint``: of the settings and inputs that planned it. ``overwrite: false`` lets a re-run
  skip complete files, which is only right when they were made the same way: a dataset that
  finds another fingerprint on disk rewrites, one that finds the same resumes;
- ``runs_in``: ``any_process`` when the producers may be pickled to worker processes,
  ``this_process`` when they need state of this process (an initialised Earth Engine session);
- ``check``: optionally, a judgement of what the producers reported, run before the new output
  replaces the old (the sharding pass refuses to replace good shards with a pass that dropped
  everything).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

#: Hidden file (ignored by listings) holding the fingerprint of the files next to it.
FINGERPRINT_FILE = ".export-fingerprint"

#: Where a plan's producers may run.
RunsIn = Literal["any_process", "this_process"]

Item = TypeVar("Item")


def fingerprint(settings: Any) -> str:
    """A stable SHA-256 of JSON-able settings (dataclasses and tuples as their ``str``/lists)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ExportPlan(Generic[Item]):
    """A planned export (see the module docstring).

    Attributes:
        items: Name to what produces it, in writing order.
        fingerprint: Of everything that decides the items; ``None`` trusts files on disk.
        runs_in: Where the producers may run.
        item_fingerprints: Per item, where items resume one by one (scenes); an item not
            listed has :attr:`fingerprint`.
        check: Called with what the items reported (datasets that collect reports, such as the
            shards'), before the new output replaces the old; raising keeps the old.
    """

    items: Mapping[str, Item]
    fingerprint: str | None = None
    runs_in: RunsIn = "any_process"
    item_fingerprints: Mapping[str, str] = field(default_factory=dict)
    check: Callable[[Sequence[Mapping[str, Any]]], None] | None = None

    def fingerprint_of(self, name: str) -> str | None:
        """The fingerprint of one item."""
        return self.item_fingerprints.get(name, self.fingerprint)

    def workers(self, configured: int) -> int:
        """Processes to use: the dataset's ``workers`` setting, or 1 for ``this_process``."""
        return configured if self.runs_in == "any_process" else 1
