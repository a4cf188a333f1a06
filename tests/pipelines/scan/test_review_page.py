"""The review page in a real headless Chromium: review, reload, export, ingest the export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml

from dam_detection.datasets import VectorPointsDataset
from dam_detection.datasets.point_sources import PointSourceSettings
from dam_detection.datasets.review_page import ReviewPageDataset
from dam_detection.pipelines.ingest_points.sources import standardize_source
from dam_detection.pipelines.scan.review import build_review_page
from dam_detection.pipelines.scan.tile_scan import chip_png
from tests.pipelines.scan.helpers import BANDS, image

PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: Debian's Chromium (``apt install chromium``); Playwright drives it, never downloads its own.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Flags for a closed network and a root user (see docs/scan.md, "Testing the review page").
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def sorted_detections() -> gpd.GeoDataFrame:
    """Four candidates (ranks 1, 2, 4, 5) and one known dam (rank 3)."""
    lon = -109.5 + np.arange(5) * 0.01
    return gpd.GeoDataFrame(
        {
            "detection_id": [f"mesa_1_2_{i:03d}" for i in range(5)],
            "tile_id": "mesa_1_2",
            "score": [0.97, 0.91, 0.88, 0.74, 0.61],
            "rank": [1, 2, 3, 4, 5],
            "status": ["candidate", "candidate", "known", "candidate", "candidate"],
            "lon": lon,
            "lat": 37.4,
            "nearest_id": ["national:PL00001", None, "national:PL00002", "grand:3", None],
            "nearest_inventory": ["planet_dams", None, "planet_dams", "planet_large_dams", None],
            "nearest_distance_m": [820.0, np.nan, 12.0, 1500.0, np.nan],
        },
        geometry=gpd.points_from_xy(lon, np.full(5, 37.4)),
        crs="EPSG:4326",
    )


@pytest.fixture
def page_path(tmp_path) -> Path:
    detections = sorted_detections()
    picture = image((40, 40))
    chips = {
        i: chip_png(picture, np.zeros((40, 40), np.float16), BANDS, 20, 20, 16, 2)
        for i in detections["detection_id"]
    }
    page = build_review_page(detections, chips, "mesa-test", "mesa")
    ReviewPageDataset(str(tmp_path / "scan_review")).save(page)
    return tmp_path / "scan_review" / "index.html"


def test_page_lists_only_candidates_in_rank_order_with_their_chips(page_path):
    html = page_path.read_text()
    data = json.loads(html.split('type="application/json">')[1].split("</script>")[0])
    assert [c["candidate_id"] for c in data["candidates"]] == [
        "mesa_1_2_000", "mesa_1_2_001", "mesa_1_2_003", "mesa_1_2_004"]  # fmt: skip
    assert [c["rank"] for c in data["candidates"]] == [1, 2, 3, 4]
    assert all((page_path.parent / c["chip"]).is_file() for c in data["candidates"])
    assert data["candidates"][1]["nearest_id"] is None  # NaN distances become null, not NaN


def reviewed_source_settings() -> dict:
    """The ``reviewed`` entry of the shipped ``point_sources`` (what the next run reads)."""
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_ingest_points.yml").read_text())
    entry = dict(catalog["point_sources"]["sources"]["reviewed"])
    for key in ("dataset", "optional"):
        entry.pop(key)
    return PointSourceSettings.model_validate(entry).reader_options()


def test_review_in_chromium_survives_a_reload_and_its_export_feeds_ingest(page_path, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt install chromium` to run browser tests")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.goto(page_path.as_uri())
            cards = page.locator("section.candidate")
            assert cards.count() == 4
            # Chips load from disk, offline.
            assert page.evaluate("[...document.images].every(i => i.naturalWidth > 0)")
            page.keyboard.press("c")  # the first: confirmed, and the page moves on
            page.keyboard.press("r")  # the second: rejected
            page.locator("section.candidate").nth(2).get_by_text("Unsure (u)").click()
            page.reload()
            cards = page.locator("section.candidate")
            decisions = [cards.nth(i).get_attribute("data-decision") for i in range(4)]
            assert decisions == ["confirmed", "rejected", "unsure", ""]
            assert page.locator("#progress").inner_text() == "3 of 4 reviewed"
            with page.expect_download() as download:
                page.keyboard.press("e")
            export = tmp_path / "reviewed.geojson"
            download.value.save_as(export)
            assert download.value.suggested_filename == "reviewed_mesa-test.geojson"
        finally:
            browser.close()
    raw = VectorPointsDataset(filepath=str(export)).load()
    points, summary = standardize_source(raw, "reviewed", reviewed_source_settings())
    assert points[["point_id", "kind", "label"]].values.tolist() == [
        ["reviewed:mesa_1_2_000", "dam", 1],
        ["reviewed:mesa_1_2_001", "reviewed", 0],
    ]
    assert summary["filtered"] == {"not_decided": 1}  # the unsure one, counted
    assert points.geometry.x.tolist() == pytest.approx([-109.5, -109.49])
