"""Typed settings of ``shard_tfrecords`` (``conf/base/parameters_shard_tfrecords.yml``)."""

from __future__ import annotations

from pydantic import Field

from dam_detection.parameters.model import Settings


class SnapSettings(Settings):
    """``shard_tfrecords.snap_dams``: re-centre dam patches on the wall the image shows."""

    enabled: bool
    """Find the wall in every dam patch (NDWI and AVE only) and re-centre the patch on it."""
    max_shift_px: int = Field(ge=0)
    """Farthest the wall may lie from the inventory point, pixels."""
    min_drop_m: float = Field(ge=0)
    """Least drop from the lake surface to the dry ground below the wall, metres."""


class ShardSettings(Settings):
    """``shard_tfrecords``: how the raw exports become checked, shuffled shards."""

    label_keys: list[str] = Field(min_length=1)
    """Label features accepted on read, first present wins; shards always write ``label``."""
    records_without_point_index: str
    """Records without a ``point_index``: ``drop`` (reason ``missing_point_index``) or the
    split to put them in."""
    stats_split: str
    """Split whose records give the per-band statistics (``stats.json``)."""
    tasks: int = Field(ge=1)
    """Units of parallel work; the shards depend on this (and the seed), not on the workers."""
    records_per_shard: int = Field(ge=1)
    """A shard is closed at this many records."""
    min_shards_per_split: int = Field(ge=1)
    """Shards written at once per split, over all tasks: at least train's parallel readers."""
    interleave_files: int = Field(ge=1)
    """Input files each task reads at once, drawing the next record from a random one."""
    shuffle_buffer: int = Field(ge=0)
    """Records each task holds back to shuffle before writing (memory: this x record size)."""
    snap_dams: SnapSettings
    """Re-centring of dam patches on their walls (docs/shard_tfrecords.md, "Snapping")."""
    max_drop_share: float = Field(ge=0, le=1)
    """Largest share of the records read that may be dropped; a pass dropping more (or keeping
    nothing) fails with its top drop reasons and leaves the previous shards untouched."""
