"""VectorPointsDataset and NBIAsciiDataset on tiny files written at test time."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from kedro.io.core import DatasetError
from shapely.geometry import Point

from dam_detection.datasets import NBIAsciiDataset, VectorPointsDataset
from dam_detection.datasets.nbi_ascii import parse_nbi_lines


def _points(crs: str | None = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"dam_id": [10, 11], "dam_name": ["Alpha", "Beta"]},
        geometry=[Point(-100.5, 40.25), Point(-99.75, 40.5)],
        crs=crs,
    )


def nbi_line(lat: str = "40153000", lon: str = "100301500", nav: str = "1") -> str:
    """A 432-character NBI record with the fields ingest_points reads."""
    record = [" "] * 432

    def put(first: int, text: str) -> None:
        record[first - 1 : first - 1 + len(text)] = text

    put(1, "031")  # item 1, Nebraska
    put(4, "C000123456".ljust(15))  # item 8
    put(38, "PLATTE RIVER".ljust(24))  # item 6A
    put(130, lat)  # item 16
    put(138, lon)  # item 17
    put(157, "1967")  # item 27
    put(189, nav)  # item 38
    return "".join(record)


def test_nbi_line_is_432_characters():
    assert len(nbi_line()) == 432


def test_geoparquet_round_trip_is_atomic_and_keeps_crs(tmp_path: Path):
    dataset = VectorPointsDataset(filepath=str(tmp_path / "out" / "points.parquet"))
    assert not dataset.exists()
    dataset.save(_points())
    assert dataset.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["points.parquet"]  # no temp left
    loaded = dataset.load()
    assert loaded.crs.to_epsg() == 4326
    assert loaded["dam_name"].tolist() == ["Alpha", "Beta"]
    assert loaded.attrs["source_file"].endswith("points.parquet")


def test_geojson_round_trip(tmp_path: Path):
    dataset = VectorPointsDataset(filepath=str(tmp_path / "points.geojson"))
    dataset.save(_points())
    dataset.save(_points())  # overwriting works
    assert dataset.load().geometry.x.round(2).tolist() == [-100.5, -99.75]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("layout", ["bare", "folder", "zip"])
def test_shapefile_without_prj_reads_with_no_crs(tmp_path: Path, layout: str):
    folder = tmp_path / "shp"
    folder.mkdir()
    _points(crs=None).to_file(folder / "dams.shp", engine="pyogrio")
    assert not (folder / "dams.prj").exists()
    if layout == "bare":
        path = folder / "dams.shp"
    elif layout == "folder":
        path = folder
    else:
        path = tmp_path / "dams.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for part in folder.iterdir():
                archive.write(part, part.name)
        shutil.rmtree(folder)
    loaded = VectorPointsDataset(filepath=str(path)).load()
    assert loaded.crs is None
    assert loaded["dam_id"].tolist() == [10, 11]


def test_csv_loads_as_plain_table_with_load_args(tmp_path: Path):
    path = tmp_path / "dams.csv"
    path.write_text("id;x;y\n1;-100.0;40.0\n")
    loaded = VectorPointsDataset(filepath=str(path), load_args={"sep": ";"}).load()
    assert not isinstance(loaded, gpd.GeoDataFrame)
    assert loaded.columns.tolist() == ["id", "x", "y"]


def test_missing_file_names_the_path_and_fix(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"nope\.shp.*does not exist.*catalog filepath"):
        VectorPointsDataset(filepath=str(tmp_path / "nope.shp")).load()


def test_unknown_suffix_asks_for_format(tmp_path: Path):
    path = tmp_path / "dams.xyz"
    path.write_text("x")
    with pytest.raises(DatasetError, match="load_args.format"):
        VectorPointsDataset(filepath=str(path)).load()


def test_remote_paths_are_refused():
    with pytest.raises(DatasetError, match="local files only"):
        VectorPointsDataset(filepath="s3://bucket/dams.shp")


def test_describe_names_the_file(tmp_path: Path):
    assert "dams.shp" in str(VectorPointsDataset(filepath=str(tmp_path / "dams.shp")))


def test_nbi_dataset_cuts_fields(tmp_path: Path):
    path = tmp_path / "NE18.txt"
    path.write_text(nbi_line() + "\n\n" + nbi_line(nav="N") + "\n", encoding="latin-1")
    frame = NBIAsciiDataset(filepath=str(path)).load()
    assert frame["line_number"].tolist() == [1, 3]
    assert frame.loc[0, "latitude_dms"] == "40153000"
    assert frame.loc[0, "longitude_dms"] == "100301500"
    assert frame.loc[0, "structure_number"] == "C000123456"
    assert frame.loc[0, "features_intersected"] == "PLATTE RIVER"
    assert frame["navigation_control"].tolist() == ["1", "N"]
    assert frame.attrs["source_file"] == str(path)


def test_nbi_short_record_names_file_line_and_fix():
    lines = [nbi_line(), "031,C000123456,40153000"]
    with pytest.raises(DatasetError, match=r"NE18\.txt line 2: .*expected 432.*fixed-width"):
        parse_nbi_lines(lines, source_file="NE18.txt")


def test_nbi_dataset_writes_records_it_reads_back(tmp_path: Path):
    dataset = NBIAsciiDataset(filepath=str(tmp_path / "planet" / "x.txt"))
    dataset.save(nbi_line() + "\n")
    assert dataset.load()["structure_number"].tolist() == ["C000123456"]
    assert [p.name for p in (tmp_path / "planet").iterdir()] == ["x.txt"]  # no temporary left
