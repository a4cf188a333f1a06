"""``detection``: how peaks become detections and when a detection finds a dam; shared by
``train`` (the threshold chosen on validation patches) and ``segment`` (scenes).
"""

from __future__ import annotations

from pydantic import Field

from dam_detection.parameters.model import Settings


class DetectionSettings(Settings):
    """``detection``: one definition of a detection for every pipeline."""

    min_distance_px: int = Field(ge=1)
    """Detections at least this many pixels apart (10 px = 100 m at 10 m pixels)."""
    smoothing_px: float = Field(ge=0)
    """Sigma in pixels of the Gaussian a heatmap is smoothed with before its peaks are found
    (0: none); the threshold chosen on validation patches is on the smoothed scores too."""
    tolerance_m: float = Field(gt=0)
    """A detection this close to a dam finds it: the threshold is chosen at this tolerance on
    validation patches and the summary of ``segment`` reports it."""
