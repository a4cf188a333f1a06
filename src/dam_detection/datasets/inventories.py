"""Published dam and bridge inventories: how each is read, and how each must be attributed.

A point source may name one (``inventory: grand``): the reader options of its published format
fill whatever the entry leaves unset, and its attribution goes into the ingest report. Which
format was checked against a real file and which only against the publisher's documentation is
stated per entry (``checked``); docs/ingest_points.md lists the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

InventoryName = Literal["nid", "nid_2018", "grand", "goodd", "geodar", "nbi", "nbi_2018"]


@dataclass(frozen=True)
class InventoryFormat:
    """One published inventory.

    Attributes:
        title: What it is.
        attribution: The citation its publisher asks for.
        license: Terms of use, in short.
        options: Reader options (fields of ``PointSourceSettings``) for the published file.
        checked: ``real file`` (read by this project's tests) or ``documentation`` (built from
            the publisher's description of the format only).
        download_url: A direct download the publisher offers, if any (fetch it with the entry's
            ``download``); ``None`` where the publisher asks users to register or fill a form.
    """

    title: str
    attribution: str
    license: str
    options: Mapping[str, Any]
    checked: Literal["real file", "documentation"]
    download_url: str | None = None
    notes: str = field(default="")


INVENTORIES: Mapping[str, InventoryFormat] = {
    "nid": InventoryFormat(
        title="USACE National Inventory of Dams, national CSV export",
        attribution="U.S. Army Corps of Engineers, National Inventory of Dams (NID)",
        license="U.S. federal government work, public domain",
        options={
            "reader": "table",
            "kind": "dam",
            "id_column": "NID ID",
            "name_column": "Dam Name",
            "lon_column": "Longitude",
            "lat_column": "Latitude",
            "crs": "EPSG:4326",
        },  # fmt: skip
        checked="documentation",
        download_url="https://nid.sec.usace.army.mil/api/nation/csv",
    ),
    "nid_2018": InventoryFormat(
        title="USACE National Inventory of Dams 2018, point shapefile",
        attribution="USACE National Inventory of Dams (2018)",
        license="U.S. federal government work, public domain",
        options={
            "reader": "vector",
            "kind": "dam",
            "id_column": "FID",
            "assumed_crs": "EPSG:4326",
        },  # fmt: skip
        checked="real file",
        notes="longitude/latitude without a .prj file; the attribute table holds only FID",
    ),
    "grand": InventoryFormat(
        title="Global Reservoir and Dam Database (GRanD) v1.3, dams point shapefile",
        attribution=(
            "Lehner, B., et al. (2011): High-resolution mapping of the world's reservoirs and "
            "dams for sustainable river-flow management. Frontiers in Ecology and the "
            "Environment 9 (9): 494-502. Global Dam Watch, GRanD v1.3"
        ),
        license="free for non-commercial use (Global Dam Watch terms)",
        options={
            "reader": "vector",
            "kind": "dam",
            "id_column": "GRAND_ID",
            "name_column": "DAM_NAME",
        },  # fmt: skip
        checked="documentation",
        notes="download after registration at globaldamwatch.org; the attribute table also "
        "lists LONG_DD/LAT_DD, read with reader: table for a CSV export of it",
    ),
    "goodd": InventoryFormat(
        title="GlObal geOreferenced Database of Dams (GOODD) v1, dams point shapefile",
        attribution=(
            "Mulligan, M., van Soesbergen, A., Saenz, L. (2020): GOODD, a global dataset of "
            "more than 38,000 georeferenced dams. Scientific Data 7, 31"
        ),
        license="CC BY 4.0",
        options={"reader": "vector", "kind": "dam", "id_column": "DAM_ID"},
        checked="documentation",
        notes="download through the form at globaldamwatch.org",
    ),
    "geodar": InventoryFormat(
        title="Georeferenced global Dams And Reservoirs (GeoDAR) v1.1, dams",
        attribution=(
            "Wang, J., et al. (2022): GeoDAR: georeferenced global dams and reservoirs dataset "
            "for bridging attributes and geolocations. Earth System Science Data 14, 1869-1899, "
            "https://doi.org/10.5194/essd-14-1869-2022; data https://doi.org/10.5281/zenodo.6163413"
        ),
        license="CC BY 4.0",
        options={"reader": "vector", "kind": "dam", "id_column": "id_v11"},
        checked="documentation",
        notes="GeoDAR_v11_dams.shp in the Zenodo archive (a direct download: give its file URL "
        "as the entry's download.url)",
    ),
    "nbi": InventoryFormat(
        title="FHWA National Bridge Inventory, fixed-width ASCII (one file per state or nation)",
        attribution="Federal Highway Administration, National Bridge Inventory (NBI)",
        license="U.S. federal government work, public domain",
        options={"reader": "nbi_ascii", "kind": "bridge"},
        checked="documentation",
        notes="items 16/17 (latitude, longitude) and 38 (navigation control) per the FHWA "
        "Recording and Coding Guide; the 2018 shapefile below was derived from this format",
    ),
    "nbi_2018": InventoryFormat(
        title="FHWA National Bridge Inventory 2018, bridges over navigable waterways, shapefile",
        attribution="FHWA National Bridge Inventory (2018)",
        license="U.S. federal government work, public domain",
        options={"reader": "vector", "kind": "bridge", "assumed_crs": "EPSG:4326"},
        checked="real file",
        notes="longitude/latitude without a .prj file; fields YEAR_BUILT, STATE_CODE",
    ),
}


def inventory_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The published format's reader options with the entry's own ``options`` over them.

    Raises:
        KeyError: Naming the known inventories, if ``name`` is not one.
    """
    if name not in INVENTORIES:
        raise KeyError(f"unknown inventory {name!r}; known: {sorted(INVENTORIES)}")
    return {**INVENTORIES[name].options, **options}
