"""``shard_tfrecords``: validated, shuffled, split-aware shards, band statistics, a report."""

from __future__ import annotations

from typing import Any


def create_pipeline(**kwargs: Any) -> Any:
    """Create the ``shard_tfrecords`` pipeline (see :mod:`.pipeline`)."""
    # Imported here, not at module level: worker processes unpickle tasks from this package and
    # should not pay for importing Kedro's pipeline machinery and pandas.
    from dam_detection.pipelines.shard_tfrecords.pipeline import create_pipeline as create

    return create(**kwargs)


__all__ = ["create_pipeline"]
