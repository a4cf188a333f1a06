"""``detection``: how peaks become detections and when a detection finds a dam; shared by
``train`` (the threshold chosen on validation patches), ``segment`` (scenes) and ``scan``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from dam_detection.detection.views import VIEW_COUNTS
from dam_detection.parameters.model import Settings


class DetectionSettings(Settings):
    """``detection``: one definition of a detection for every pipeline."""

    min_distance_px: int = Field(ge=1)
    """Detections at least this many pixels apart (10 px = 100 m at 10 m pixels)."""
    smoothing_px: float = Field(ge=0)
    """Sigma in pixels of the Gaussian a heatmap is smoothed with before its peaks are found
    (0: none); the threshold chosen on validation patches is on the smoothed scores too."""
    views: int
    """Poses of every block the FCN predicts, averaged (1, 2, 4 or 8; :mod:`.views`): each
    costs one more prediction; the threshold chosen on validation patches uses the same."""
    threshold_beta: float = Field(gt=0)
    """The detection threshold chosen on validation patches maximises the F-beta of their peaks:
    recall weighs ``threshold_beta`` times precision (1: F1). Above 1 where discovery matters:
    an unlisted dam inside a validation patch counts as a false alarm there, so validation
    precision is lower than a scan's (results_scan.md)."""
    tolerance_m: float = Field(gt=0)
    """A detection this close to a dam finds it: the threshold is chosen at this tolerance on
    validation patches and the summary of ``segment`` reports it."""

    @field_validator("views")
    @classmethod
    def _known_view_count(cls, views: int) -> int:
        if views not in VIEW_COUNTS:
            raise ValueError(f"must be one of {VIEW_COUNTS}, got {views}")
        return views
