"""RGB previews of patches, as the real samples are shown (B4/B3/B2 stretched 0-0.3)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dam_detection.bands import RGB_BANDS


def rgb_preview(bands: Mapping[str, np.ndarray], top: float = 0.3) -> np.ndarray:
    """``(rows, cols, 3)`` uint8 RGB from B4/B3/B2 reflectance, linear stretch 0..``top``.

    Raises:
        KeyError: If an RGB band is missing (e.g. masked at the centre of a record).
    """
    missing = [band for band in RGB_BANDS if band not in bands]
    if missing:
        raise KeyError(f"no {missing} in this record: cannot draw an RGB preview")
    stack = np.stack([np.asarray(bands[band], np.float32) for band in RGB_BANDS], axis=-1)
    return (np.clip(stack / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
