"""The ``scan`` pipeline: a whole region tiled, segmented on Dask, and its detections sorted into
dams the inventories know and candidates no inventory lists, with a review page.
"""

from dam_detection.pipelines.scan.pipeline import create_pipeline

__all__ = ["create_pipeline"]
