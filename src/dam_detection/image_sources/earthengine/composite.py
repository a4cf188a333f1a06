"""The Earth Engine image every export samples: a cloud-masked Sentinel-2 median plus NDWI and
elevation, with the configured bands in order.

Everything here only *builds* an ``ee.Image`` graph; nothing is sent to Earth Engine until an
export task is started (see :mod:`.tasks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import ee

from dam_detection.bands import ELEVATION_BAND, NDWI_BAND, validate_band_names
from dam_detection.image_sources.base import CompositeWindow
from dam_detection.image_sources.settings import (
    CloudScorePlusSettings,
    CompositeSettings,
    ElevationSettings,
)

#: QA60 bit 10 flags opaque clouds, bit 11 cirrus (Sentinel-2 L1C/L2A product specification).
CLOUD_BIT = 1 << 10
CIRRUS_BIT = 1 << 11
#: Earth Engine stores Sentinel-2 surface reflectance as integers scaled by 10000.
REFLECTANCE_SCALE = 10000
#: Sentinel-2 bands a composite may export directly (besides the derived NDWI and elevation).
SENTINEL2_BANDS: tuple[str, ...] = (
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12",
)  # fmt: skip
#: Selects the spectral bands only, dropping QA bands and a linked cloud score.
SPECTRAL_BANDS_PATTERN = "B.*"


def mask_qa60(image: ee.Image) -> ee.Image:
    """Mask cloudy and cirrus pixels (QA60 bits 10 and 11) and scale to reflectance (0-1).

    QA60 is filled only for images processed before January 2022; use Cloud Score+ for later
    dates.
    """
    qa = image.select("QA60")
    clear = qa.bitwiseAnd(CLOUD_BIT).eq(0).And(qa.bitwiseAnd(CIRRUS_BIT).eq(0))
    return image.updateMask(clear).select(SPECTRAL_BANDS_PATTERN).divide(REFLECTANCE_SCALE)


def mask_cloud_score(image: ee.Image, settings: CloudScorePlusSettings) -> ee.Image:
    """Keep pixels whose linked Cloud Score+ band is at least the threshold; scale to 0-1."""
    clear = image.select(settings.band).gte(settings.clear_threshold)
    return image.updateMask(clear).select(SPECTRAL_BANDS_PATTERN).divide(REFLECTANCE_SCALE)


def sentinel2_median(
    settings: CompositeSettings,
    window: CompositeWindow,
    region: ee.Geometry | ee.FeatureCollection | None = None,
) -> ee.Image:
    """Median of the cloud-masked images in the window, below the cloudy-image limit.

    Args:
        settings: Collection and cloud mask.
        window: Dates and cloudy-image limit.
        region: Where the composite is sampled (``filterBounds``): images elsewhere are left
            out before anything is masked. ``None`` keeps every image in the window.
    """
    collection = ee.ImageCollection(settings.collection_id)
    if region is not None:
        collection = collection.filterBounds(region)
    collection = collection.filterDate(window.start_date, window.end_date).filter(
        ee.Filter.lt("CLOUDY_PIXEL_PERCENTAGE", window.max_cloud_percent)
    )
    if settings.cloud_mask == "cloud_score_plus":
        scores = settings.cloud_score_plus
        # linkCollection joins each image with the score image of the same system:index.
        linked = collection.linkCollection(ee.ImageCollection(scores.collection_id), [scores.band])
        return linked.map(lambda image: mask_cloud_score(image, scores)).median()
    return collection.map(mask_qa60).median()


def elevation_image(source: ElevationSettings) -> ee.Image:
    """The elevation band, named ``AVE`` (the product's name for it), as float."""
    if source.is_collection:
        image = ee.ImageCollection(source.asset_id).select(source.band).mosaic()
    else:
        image = ee.Image(source.asset_id).select(source.band)
    return image.rename(ELEVATION_BAND).toFloat()


def band_stack(
    settings: CompositeSettings,
    window: CompositeWindow,
    bands: Sequence[str],
    region: ee.Geometry | ee.FeatureCollection | None = None,
) -> ee.Image:
    """The image whose bands, in ``bands`` order, every patch and scene export samples.

    Args:
        settings: How the composite is made.
        window: Which images it takes.
        bands: Any of the Sentinel-2 bands, ``NDWI`` (``normalizedDifference(['B3', 'B8'])``)
            and ``AVE`` (elevation).
        region: Where it will be sampled, for ``filterBounds``.

    Raises:
        ValueError: If a band is neither a Sentinel-2 band nor a derived one.
    """
    names = validate_band_names(bands)
    unknown = [name for name in names if name not in (*SENTINEL2_BANDS, NDWI_BAND, ELEVATION_BAND)]
    if unknown:
        raise ValueError(
            f"Earth Engine cannot export bands {unknown}: set `bands` to names among "
            f"{[*SENTINEL2_BANDS, NDWI_BAND, ELEVATION_BAND]}"
        )
    composite = sentinel2_median(settings, window, region)
    layers = []
    optical = [name for name in names if name in SENTINEL2_BANDS]
    if optical:
        layers.append(composite.select(optical))
    if NDWI_BAND in names:
        layers.append(composite.normalizedDifference(["B3", "B8"]).rename(NDWI_BAND))
    if ELEVATION_BAND in names:
        layers.append(elevation_image(settings.elevation))
    # Built in groups above; one select puts the bands in the configured order.
    return ee.Image.cat(layers).select(list(names)).toFloat()
