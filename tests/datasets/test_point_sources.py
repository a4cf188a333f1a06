"""Point sources as users have them: published inventories by name, fetched from a real HTTP
server on 127.0.0.1, cached and checked against a pinned checksum."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from kedro.io import DatasetError

from dam_detection.datasets import PointSourcesDataset
from dam_detection.datasets.inventories import INVENTORIES
from dam_detection.pipelines.ingest_points.nodes import read_source
from tests.conftest import shared_file

#: A few rows in the layout of the NID's national CSV export, names not only in ASCII.
NID_CSV = (
    "Dam Name,Other Names,NID ID,Latitude,Longitude,State\n"
    "Lake Émile Dam,,TX00001,31.5,-97.1,Texas\n"
    "Presa Ñandú,,TX00002,31.6,-97.2,Texas\n"
    "No Coordinates Dam,,TX00003,,,Texas\n"
)


class Server:
    """A static HTTP server on 127.0.0.1 over a folder the test fills; counts requests."""

    def __init__(self, root: Path) -> None:
        self.root, self.requests = root, 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                server.requests += 1
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "publisher"
    root.mkdir()
    (root / "nation.csv").write_text(NID_CSV, encoding="utf-8")
    running = Server(root)
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def nid_source(tmp_path: Path, url: str, **download: str) -> PointSourcesDataset:
    return PointSourcesDataset(
        sources={
            "nid": {
                "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                            "filepath": str(tmp_path / "raw" / "nid.csv")},
                "inventory": "nid",
                "download": {"url": url, **download},
            }
        }
    )  # fmt: skip


def test_a_published_inventory_is_fetched_once_and_read_by_its_format(tmp_path, server):
    loaded = nid_source(tmp_path, f"{server.url}/nation.csv").load()
    points, summary = read_source(loaded["nid"].frame, loaded["nid"].settings, "nid")
    assert list(points["point_id"]) == ["nid:TX00001", "nid:TX00002"]
    assert list(points["name"]) == ["Lake Émile Dam", "Presa Ñandú"]
    assert summary["rejected"] == {"missing_coordinates": 1}
    assert summary["attribution"] == INVENTORIES["nid"].attribution
    # Cached: the next run reads the kept file without asking the server again.
    nid_source(tmp_path, f"{server.url}/nation.csv").load()
    assert server.requests == 1


def test_a_pinned_checksum_refuses_a_changed_release(tmp_path, server):
    good = hashlib.sha256(NID_CSV.encode()).hexdigest()
    nid_source(tmp_path, f"{server.url}/nation.csv", sha256=good).load()
    # The publisher replaces the file under the same URL: the kept copy no longer matches
    # the pin either, so it is fetched again, and the new one is refused with both digests.
    (server.root / "nation.csv").write_text(NID_CSV + "Extra Dam,,TX9,30,-96,Texas\n")
    kept = tmp_path / "raw" / "nid.csv"
    kept.write_text("damaged")
    with pytest.raises(DatasetError, match=f"not the pinned {good}.*download.sha256"):
        nid_source(tmp_path, f"{server.url}/nation.csv", sha256=good).load()
    assert not kept.with_name("nid.csv.part").exists()


def test_a_failed_download_names_the_url_and_leaves_nothing(tmp_path, server):
    with pytest.raises(DatasetError, match=r"nid: downloading .*/missing.csv failed"):
        nid_source(tmp_path, f"{server.url}/missing.csv").load()
    assert not list((tmp_path / "raw").glob("*"))


def test_bad_download_settings_say_what_to_write(tmp_path):
    with pytest.raises(DatasetError, match="download needs a url"):
        nid_source(tmp_path, "")
    with pytest.raises(DatasetError, match="unknown inventory 'nidd'"):
        PointSourcesDataset(
            sources={"x": {"dataset": {"type": "pandas.CSVDataset", "filepath": "x.csv"},
                           "inventory": "nidd"}}
        )  # fmt: skip


@pytest.mark.parametrize(
    ("inventory", "relative", "kind", "count"),
    [
        ("nid_2018", "points/nid_dams_2018.shp", "dam", 91_222),
        ("nbi_2018", "points/nbi_bridges_navigable_2018.shp", "bridge", 4_136),
    ],
)
def test_the_formats_checked_against_real_files_read_them(inventory, relative, kind, count):
    assert INVENTORIES[inventory].checked == "real file"
    dataset = PointSourcesDataset(
        sources={
            inventory: {
                "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                            "filepath": str(shared_file(relative))},
                "inventory": inventory,
            }
        }
    )  # fmt: skip
    source = dataset.load()[inventory]
    points, summary = read_source(source.frame, source.settings, inventory)
    assert summary["rows_in"] == count and set(points["kind"]) == {kind}
    assert summary["attribution"] == INVENTORIES[inventory].attribution


def test_an_optional_source_without_its_file_yet_is_skipped_then_read(tmp_path):
    export = tmp_path / "reviewed.geojson"
    sources = PointSourcesDataset(
        sources={
            "reviewed": {
                "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                            "filepath": str(export)},
                "optional": True, "reader": "vector", "kind": "reviewed",
                "decision_column": "decision", "id_column": "candidate_id",
            }
        }
    )  # fmt: skip
    assert sources.exists() and sources.load() == {}  # before any review: nothing, no error
    export.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-109.5, 37.4]},'
        ' "properties": {"candidate_id": "a", "decision": "rejected"}}]}'
    )
    (source,) = sources.load().values()
    points, _ = read_source(source.frame, source.settings, "reviewed")
    assert points[["kind", "label"]].values.tolist() == [["reviewed", 0]]
