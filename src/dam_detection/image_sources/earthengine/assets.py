"""Earth Engine catalogue assets this project reads, and the ones their publishers superseded.

A superseded asset still loads, often for years, but receives no fixes (AW3D30 V3_2 lacks the
void filling of V4_1; ``COPERNICUS/S2_SR`` mixes processing baselines). The user is told at the
start of the run, with the replacement, rather than learning it from the pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

#: Superseded catalogue asset -> its current replacement (Earth Engine Data Catalog notices).
SUPERSEDED_ASSETS: Mapping[str, str] = {
    "JAXA/ALOS/AW3D30/V3_2": "JAXA/ALOS/AW3D30/V4_1",
    "JAXA/ALOS/AW3D30/V2_2": "JAXA/ALOS/AW3D30/V4_1",
    "JAXA/ALOS/AW3D30/V2_1": "JAXA/ALOS/AW3D30/V4_1",
    "JAXA/ALOS/AW3D30_V1_1": "JAXA/ALOS/AW3D30/V4_1",
    "COPERNICUS/S2_SR": "COPERNICUS/S2_SR_HARMONIZED",
    "COPERNICUS/S2": "COPERNICUS/S2_HARMONIZED",
    "JRC/GSW1_0/GlobalSurfaceWater": "JRC/GSW1_4/GlobalSurfaceWater",
    "JRC/GSW1_1/GlobalSurfaceWater": "JRC/GSW1_4/GlobalSurfaceWater",
    "JRC/GSW1_2/GlobalSurfaceWater": "JRC/GSW1_4/GlobalSurfaceWater",
    "JRC/GSW1_3/GlobalSurfaceWater": "JRC/GSW1_4/GlobalSurfaceWater",
}


def warn_if_superseded(asset_id: str, setting: str) -> bool:
    """Log a warning naming the replacement when ``asset_id`` is superseded.

    Args:
        asset_id: The configured asset.
        setting: The parameter that configures it, named in the warning.

    Returns:
        Whether a warning was logged.
    """
    replacement = SUPERSEDED_ASSETS.get(asset_id.strip("/"))
    if replacement is None:
        return False
    logger.warning(
        "%s is %s, which its publisher superseded by %s: set %s: %s (exports of the old asset "
        "still run, without the newer fixes)",
        setting,
        asset_id,
        replacement,
        setting,
        replacement,
    )
    return True
