"""``train``: a patch classifier and a dilated FCN from the shards, recorded by Sacred."""

from __future__ import annotations

from typing import Any


def create_pipeline(**kwargs: Any) -> Any:
    """Create the ``train`` pipeline (see :mod:`.pipeline`)."""
    # Imported here, not at module level: reading this package's settings (the parameter check
    # at start-up) should not import TensorFlow.
    from dam_detection.pipelines.train.pipeline import create_pipeline as create

    return create(**kwargs)
