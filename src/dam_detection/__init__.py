"""dam_detection: find dams in Sentinel-2 imagery, from points to heatmaps."""

__version__ = "0.1.0"
