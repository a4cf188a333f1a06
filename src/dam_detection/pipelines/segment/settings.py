"""Typed settings of ``segment`` (``conf/base/parameters_segment.yml``); see docs/segment.md.

How peaks become detections and when a detection finds a dam is the shared ``detection``
group (:mod:`dam_detection.detection.settings`), which ``train`` uses too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dam_detection.parameters.model import Settings


class CloseUpSettings(Settings):
    """``segment.close_ups``: full-resolution chips around every known dam and detection."""

    size_px: int = Field(ge=8)
    """Chip side in mosaic pixels (96 px = 960 m at 10 m pixels)."""
    max_per_scene: int | None = Field(ge=1)
    """Chips per scene at most: known dams first, then false alarms by score; ``null``: all."""


class SceneDetectionSettings(Settings):
    """``segment.detection``: the threshold applied to scene peaks."""

    threshold: Literal["validation"] | float
    """Lowest peak score kept: ``validation`` takes what ``train`` chose on validation data
    (FCN: whole validation patches; baseline: the classifier's threshold), never tuned on the
    scenes; or a number for both."""


class BaselineSettings(Settings):
    """``segment.baseline``: the patch classifier slid over the scene."""

    stride_px: int | None = Field(ge=1)
    """Step between classifier crops; ``null`` disables the baseline."""
    batch_size: int = Field(ge=1)
    """Crops per classifier call."""


class EvaluationSettings(Settings):
    """``segment.evaluation``: detections against the known dams of each scene."""

    truth_kinds: list[str] = Field(min_length=1)
    """Kinds in a scene's ``truth.geojson`` that are dams (simulated scenes)."""
    tolerances_m: list[float] = Field(min_length=1)
    """Match tolerances reported."""
    score_thresholds: list[float] = Field(min_length=1)
    """Score thresholds always in the precision-recall table (next to every candidate's)."""
    score_floor: float = Field(gt=0, lt=1)
    """Peaks down to this score are candidates: the precision-recall curve runs over them."""


class SegmentSettings(Settings):
    """``segment``: the FCN over every scene, heatmaps, detections and their evaluation."""

    bands: list[str] | None
    """Bands the models take, by name; ``null``: those the model records, else the shared
    ``bands``."""
    batch_size: int = Field(ge=1)
    """Buffered patches per FCN call (``block_patches: null``), or read at a time."""
    block_patches: int | None = Field(ge=1)
    """Predict blocks of this many patches per side, with only the halo the model's receptive
    field needs (``pipelines/segment/blocks.py``); ``null``: each buffered patch alone."""
    blocks_per_batch: int = Field(ge=1)
    """Equal blocks of a strip predicted as one batch (each holds one more block's
    activations)."""
    preview_max_px: int = Field(ge=16)
    """Longer side of the RGB preview under the overlays."""
    prediction_band: str
    """Band name in the Earth Engine upload records."""
    close_ups: CloseUpSettings
    """Close-up chips."""
    detection: SceneDetectionSettings
    """The scene detection threshold."""
    baseline: BaselineSettings
    """The sliding-classifier baseline."""
    evaluation: EvaluationSettings
    """Evaluation against known dams."""
