"""The Earth Engine image every export samples: a cloud-masked Sentinel-2 median plus NDWI and
elevation, with the configured bands in order.

Everything here only *builds* an ``ee.Image`` graph; nothing is sent to Earth Engine until an
export task is started (see :mod:`.tasks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ee

from dam_detection.bands import ELEVATION_BAND, NDWI_BAND, validate_band_names

#: QA60 bit 10 flags opaque clouds, bit 11 cirrus (Sentinel-2 L1C/L2A product specification).
CLOUD_BIT = 1 << 10
CIRRUS_BIT = 1 << 11
#: Earth Engine stores Sentinel-2 surface reflectance as integers scaled by 10000.
REFLECTANCE_SCALE = 10000
#: Sentinel-2 bands a composite may export directly (besides the derived NDWI and elevation).
SENTINEL2_BANDS: tuple[str, ...] = (
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12",
)  # fmt: skip


@dataclass(frozen=True)
class ElevationSource:
    """Where the elevation band comes from.

    Attributes:
        asset_id: Earth Engine asset. ALOS AW3D30 V3 (``JAXA/ALOS/AW3D30/V3_2``) is an
            ImageCollection of tiles; older single-image assets work with ``is_collection: false``.
        band: Band of the asset holding the surface height (``DSM`` in V3, ``AVE`` in V1).
        is_collection: Mosaic an ImageCollection into one image.
    """

    asset_id: str = "JAXA/ALOS/AW3D30/V3_2"
    band: str = "DSM"
    is_collection: bool = True


@dataclass(frozen=True)
class CompositeSettings:
    """The Sentinel-2 composite.

    Attributes:
        collection_id: Surface-reflectance ImageCollection.
        start_date: First day, ISO format.
        end_date: Day after the last day, ISO format.
        max_cloud_percent: Scenes whose ``CLOUDY_PIXEL_PERCENTAGE`` is at or above this are left
            out (the filter is "less than").
        elevation: The elevation source for the ``AVE`` band.
    """

    collection_id: str = "COPERNICUS/S2_SR_HARMONIZED"
    start_date: str = "2019-04-01"
    end_date: str = "2019-10-01"
    max_cloud_percent: float = 20.0
    elevation: ElevationSource = ElevationSource()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CompositeSettings:
        """Build from the ``composite`` parameter group (``elevation`` may be a nested dict)."""
        values = dict(config or {})
        elevation = values.pop("elevation", None) or {}
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown keys {sorted(unknown)} under image_source.earthengine.composite; "
                f"allowed: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**values, elevation=ElevationSource(**elevation))


def mask_clouds(image: ee.Image) -> ee.Image:
    """Mask cloudy and cirrus pixels (QA60 bits 10 and 11) and scale to reflectance (0-1)."""
    qa = image.select("QA60")
    clear = qa.bitwiseAnd(CLOUD_BIT).eq(0).And(qa.bitwiseAnd(CIRRUS_BIT).eq(0))
    return image.updateMask(clear).divide(REFLECTANCE_SCALE)


def sentinel2_median(settings: CompositeSettings) -> ee.Image:
    """Median of the cloud-masked scenes in the date range below the cloud limit."""
    collection = (
        ee.ImageCollection(settings.collection_id)
        .filterDate(settings.start_date, settings.end_date)
        .filter(ee.Filter.lt("CLOUDY_PIXEL_PERCENTAGE", settings.max_cloud_percent))
        .map(mask_clouds)
    )
    return collection.median()


def elevation_image(source: ElevationSource) -> ee.Image:
    """The elevation band, named ``AVE`` (the product's name for it), as float."""
    if source.is_collection:
        image = ee.ImageCollection(source.asset_id).select(source.band).mosaic()
    else:
        image = ee.Image(source.asset_id).select(source.band)
    return image.rename(ELEVATION_BAND).toFloat()


def band_stack(settings: CompositeSettings, bands: Sequence[str]) -> ee.Image:
    """The image whose bands, in ``bands`` order, every patch and scene export samples.

    Args:
        settings: Composite settings.
        bands: Any of the Sentinel-2 bands, ``NDWI`` (``normalizedDifference(['B3', 'B8'])``)
            and ``AVE`` (elevation).

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
    composite = sentinel2_median(settings)
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
