"""Image sources behind one interface: the simulated Earth (default) and Google Earth Engine."""

from dam_detection.image_sources.base import (
    ImageSource,
    PatchRequest,
    RecordChunk,
    SceneExport,
    SceneRequest,
    WaterEdgeSampling,
    make_image_source,
)

__all__ = [
    "ImageSource",
    "PatchRequest",
    "RecordChunk",
    "SceneExport",
    "SceneRequest",
    "WaterEdgeSampling",
    "make_image_source",
]
