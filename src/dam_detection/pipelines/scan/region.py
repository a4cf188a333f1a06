"""The region a scan searches, from a bounding box or a polygon file (``scan.region``)."""

from __future__ import annotations

import geopandas as gpd
import shapely

from dam_detection.pipelines.scan.settings import RegionSettings, ScanSettings


def build_scan_region(settings: RegionSettings) -> gpd.GeoDataFrame:
    """The region to scan, one EPSG:4326 polygon named ``settings.name``.

    Raises:
        ValueError: If the polygon file holds no polygon, or names no CRS.
    """
    if settings.bbox is not None:
        polygon = shapely.box(*settings.bbox)
    else:
        path = str(settings.file)
        try:
            shapes = gpd.read_file(path)
        except Exception as exc:  # pyogrio's errors name neither the setting nor the fix
            raise ValueError(
                f"scan.region.file {path!r} could not be read ({exc}): give a GeoJSON, "
                "GeoPackage or shapefile of polygons"
            ) from exc
        if shapes.crs is None:
            raise ValueError(f"scan.region.file {path!r} has no CRS: save it with one (EPSG:4326)")
        polygons = shapes.to_crs("EPSG:4326").geometry
        polygons = polygons[polygons.geom_type.isin(["Polygon", "MultiPolygon"])]
        if polygons.empty:
            raise ValueError(f"scan.region.file {path!r} holds no polygon")
        polygon = shapely.union_all(polygons.to_numpy())
    return gpd.GeoDataFrame({"name": [settings.name]}, geometry=[polygon], crs="EPSG:4326")


def scan_region_node(scan: ScanSettings) -> gpd.GeoDataFrame:
    """:func:`build_scan_region` of ``params:scan``'s region.

    The node takes the whole ``params:scan``, not ``params:scan.region``: Kedro's parameter
    validation instantiates each typed parameter as its model, and once ``scan`` is a
    ``ScanSettings`` it cannot set ``scan.region`` inside it; whether that failed depended on the
    order of the pipelines named on the command line.
    """
    return build_scan_region(scan.region)
