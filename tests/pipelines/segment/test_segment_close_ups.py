"""Close-ups: chips cut from streamed patches, which chips a scene shows, the figure and the node.

Nothing here needs TensorFlow: scenes are synthetic arrays whose values encode their position.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pytest

from dam_detection.detection.settings import DetectionSettings
from dam_detection.mixer import Mixer, MixerError
from dam_detection.model_metadata import model_metadata
from dam_detection.pipelines.segment.close_up_figure import close_ups_figure
from dam_detection.pipelines.segment.close_ups import (
    CloseUp,
    cut_chips,
    cut_heat,
    peak_near,
    pixel_size_m,
    select_close_ups,
)
from dam_detection.pipelines.segment.detect import detect_peaks
from dam_detection.pipelines.segment.predict import ScoreMap
from dam_detection.pipelines.segment.report_nodes import close_up_figures
from dam_detection.pipelines.segment.settings import SegmentSettings
from tests.settings import base_settings

#: Non-square patches (8 wide, 6 high), 3 x 3 of them, and an asymmetric buffer (kx 4, ky 2):
#: swapping rows and columns, or kx and ky, shows up as wrong values.
GRID = Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), 8, 6, 3, 9)
GRID_KERNEL = (4, 2)


def position_mosaic(mixer: Mixer = GRID) -> np.ndarray:
    """``(H, W, 2)`` mosaic: channel 0 is ``1000 * row + col + 1``, channel 1 its negative."""
    rows, cols = np.indices((mixer.height_px, mixer.width_px))
    code = (1000 * rows + cols + 1).astype(np.float32)
    return np.stack([code, -code], axis=-1)


def buffered(mosaic: np.ndarray, mixer: Mixer, kernel: tuple[int, int]) -> list[np.ndarray]:
    """Buffered patches of ``mosaic`` in export order; the buffer past the mosaic edge holds
    -7, a value no chip may show."""
    half_x, half_y = kernel[0] // 2, kernel[1] // 2
    padded = np.pad(mosaic, ((half_y, half_y), (half_x, half_x), (0, 0)), constant_values=-7)
    height, width = mixer.patch_height + kernel[1], mixer.patch_width + kernel[0]
    out = []
    for index in range(mixer.total_patches):
        row, col = mixer.patch_origin(index)
        out.append(padded[row : row + height, col : col + width].copy())
    return out


def expected_window(mosaic: np.ndarray, centre: tuple[int, int], size: int) -> np.ndarray:
    """The ``size x size`` window whose pixel ``(size // 2, size // 2)`` is ``centre``, 0 outside
    the mosaic."""
    margin = size + 64  # room for windows wholly outside the mosaic
    padded = np.pad(mosaic, ((margin, margin), (margin, margin), (0, 0)))
    top, left = centre[0] - size // 2 + margin, centre[1] - size // 2 + margin
    return padded[top : top + size, left : left + size]


#: Chip centres (row, col): inside one patch, across a patch corner (4 patches), over the top
#: right edge of the mosaic, over the bottom left corner, wholly outside.
CENTRES = [(2, 3), (6, 8), (0, 23), (17, 0), (40, 40)]


@pytest.mark.parametrize("size", [5, 6])
def test_chips_equal_the_mosaic_windows_zero_filled_outside(size):
    mosaic = position_mosaic()
    patches = buffered(mosaic, GRID, GRID_KERNEL)
    # Pixel-centre coordinates (+0.5), as detections carry them, land on the same pixel.
    centres = np.array(CENTRES, dtype=np.float64) + 0.5

    chips = cut_chips(iter(patches), GRID, GRID_KERNEL, centres, size)

    assert chips.shape == (len(CENTRES), size, size, 2) and chips.dtype == np.float32
    for chip, centre in zip(chips, CENTRES, strict=True):
        np.testing.assert_array_equal(chip, expected_window(mosaic, centre, size))
    assert chips[1, size // 2, size // 2, 0] == 1000 * 6 + 8 + 1  # the centre pixel
    assert not (chips == -7).any()  # never a buffer pixel
    assert (chips[2, : size // 2] == 0).all()  # rows above row 0
    assert (chips[2, :, size // 2 + 1 :] == 0).all()  # columns past the right edge
    assert (chips[4] == 0).all()


def test_batches_give_the_same_chips():
    patches = buffered(position_mosaic(), GRID, GRID_KERNEL)
    single = cut_chips(patches, GRID, GRID_KERNEL, np.array(CENTRES), 7)
    batches = [np.stack(patches[i : i + 4]) for i in range(0, len(patches), 4)]
    np.testing.assert_array_equal(
        cut_chips(batches, GRID, GRID_KERNEL, np.array(CENTRES), 7), single
    )


def test_reading_stops_after_the_last_patch_a_chip_needs():
    patches = buffered(position_mosaic(), GRID, GRID_KERNEL)
    read: list[int] = []

    def stream() -> Iterator[np.ndarray]:
        for index, patch in enumerate(patches):
            read.append(index)
            yield patch

    # Rows 0..4, cols 9..13: inside patch 1 (rows 0..5, cols 8..15).
    chips = cut_chips(stream(), GRID, GRID_KERNEL, np.array([[2, 11]]), 5)

    assert read == [0, 1]
    np.testing.assert_array_equal(chips[0], expected_window(position_mosaic(), (2, 11), 5))


def test_a_short_stream_or_a_wrong_patch_shape_is_an_error():
    patches = buffered(position_mosaic(), GRID, GRID_KERNEL)
    with pytest.raises(MixerError, match="need patch 8"):
        cut_chips(patches[:-1], GRID, GRID_KERNEL, np.array([[17, 23]]), 3)
    with pytest.raises(MixerError, match="shape"):
        cut_chips([p[:-1] for p in patches], GRID, GRID_KERNEL, np.array([[1, 1]]), 3)


def test_heat_windows_match_the_chips_and_are_nan_outside():
    heat = position_mosaic()[..., 0] / 1e5
    windows = cut_heat(heat, np.array(CENTRES), 5)
    for window, centre in zip(windows, CENTRES, strict=True):
        expected = expected_window(heat[..., None], centre, 5)[..., 0]
        inside = expected != 0
        np.testing.assert_allclose(window[inside], expected[inside], rtol=1e-6)
        assert np.isnan(window[~inside]).all()
    assert np.isnan(windows[4]).all() and np.isfinite(windows[0]).all()


def scene_probability() -> np.ndarray:
    probability = np.zeros((400, 400), np.float16)
    probability[92, 90] = 0.53  # within 5 px of the missed dam at (90, 90)
    probability[90, 100] = 0.8  # 10 px away: beyond the tolerance, does not count
    return probability


#: Known dams (row, col) and detections (row, col, score), tolerance 5 px.
KNOWN = np.array([[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]])
FOUND = np.array(
    [
        [11.0, 10.0, 0.90],  # dam 0, 1 px
        [12.0, 11.0, 0.95],  # also near dam 0, but dam 0 explains one detection: a false alarm
        [200.0, 200.0, 0.97],
        [52.0, 53.0, 0.99],  # dam 1
        [300.0, 300.0, 0.60],
    ]
)


def test_known_dams_first_then_false_alarms_by_score():
    chosen, total = select_close_ups(
        KNOWN, FOUND[:, :2], FOUND[:, 2], scene_probability(), 5.0, None
    )

    assert total == 6
    assert [c.title for c in chosen] == [
        "dam found 0.900",  # the nearest detection is the match
        "dam found 0.990",
        "missed dam (max 0.53)",
        "false alarm 0.970",
        "false alarm 0.950",
        "false alarm 0.600",
    ]
    assert [(c.row, c.col) for c in chosen[:3]] == [(10, 10), (50, 50), (90, 90)]  # on the dam
    assert [(c.row, c.col) for c in chosen[3:]] == [(200, 200), (12, 11), (300, 300)]


def test_the_cap_keeps_the_first_chips_and_counts_all():
    chosen, total = select_close_ups(KNOWN, FOUND[:, :2], FOUND[:, 2], scene_probability(), 5.0, 4)
    assert total == 6
    assert [c.kind for c in chosen] == ["found", "found", "missed", "false_alarm"]
    assert chosen[3].score == pytest.approx(0.97)


def test_nothing_known_nothing_found():
    assert select_close_ups(np.empty((0, 2)), np.empty((0, 2)), [], scene_probability(), 5, 16) == (
        [],
        0,
    )
    only_dams, total = select_close_ups(KNOWN, np.empty((0, 2)), [], scene_probability(), 5, 16)
    assert total == 3 and {c.kind for c in only_dams} == {"missed"}


def test_peak_near_looks_within_the_radius_only():
    probability = scene_probability()
    assert peak_near(probability, 90.5, 90.5, 5) == pytest.approx(0.53, abs=1e-3)
    assert peak_near(probability, 90.5, 90.5, 1) == 0.0
    assert peak_near(probability, 90.5, 90.5, 10) == pytest.approx(0.8, abs=1e-3)
    assert peak_near(probability, -50, -50, 5) == 0.0


def test_pixel_size_in_metres():
    assert pixel_size_m(GRID) == pytest.approx(10.0)
    degrees = Mixer("EPSG:4326", (0.0001, 0.0, -99.5, 0.0, -0.0001, 40.5), 8, 6, 3, 9)
    assert pixel_size_m(degrees) == pytest.approx(11.12, abs=0.01)


def figure_texts(figure) -> tuple[str, list[str]]:
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    return figure.get_suptitle(), titles


def test_figure_titles_every_chip_and_says_what_was_left_out():
    chosen, total = select_close_ups(KNOWN, FOUND[:, :2], FOUND[:, 2], scene_probability(), 5.0, 4)
    centres = np.array([(c.row, c.col) for c in chosen])
    heat = cut_heat(scene_probability(), centres, 16)
    chips = np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)

    figure = close_ups_figure(
        "lake", chips, heat, chosen, total=total, threshold=0.7, known_rc=KNOWN,
        found_rc=FOUND[:, :2], tolerance_px=5.0, pixel_m=10.0, captions=["a", "b", "c", "d"],
    )  # fmt: skip
    figure.canvas.draw()  # contours, rings and the legend draw without error

    suptitle, titles = figure_texts(figure)
    assert "4 of 6 shown" in suptitle and "16 x 16 px (160 m)" in suptitle and "0.7" in suptitle
    assert titles == [c.title for c in chosen]
    assert [a.get_xlabel() for a in figure.axes[:4]] == ["a", "b", "c", "d"]


def test_figure_of_a_scene_without_dams_or_detections():
    figure = close_ups_figure(
        "empty", np.zeros((0, 8, 8, 3), np.float32), np.zeros((0, 8, 8), np.float32), [],
        total=0, threshold=0.5, known_rc=np.empty((0, 2)), found_rc=np.empty((0, 2)),
        tolerance_px=2.0, pixel_m=10.0,
    )  # fmt: skip
    figure.canvas.draw()
    assert "0 shown" in figure.get_suptitle()
    assert any("no known dams" in t.get_text() for t in figure.texts)


def test_close_up_title_formats():
    assert CloseUp(0, 0, "found", 0.99812).title == "dam found 0.998"
    assert CloseUp(0, 0, "missed", 0.5312).title == "missed dam (max 0.53)"
    assert CloseUp(0, 0, "false_alarm", 0.9619).title == "false alarm 0.962"


# The node, on a scene object that streams patches like ImageExport.
SCENE_MIXER = Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), 32, 32, 2, 4)
SCENE_KERNEL = (8, 8)
SCENE_BANDS = ("B2", "B3", "B4", "NDWI", "AVE")


@dataclass
class StreamedScene:
    """Duck-typed :class:`ImageExport`: ``mixer``, ``kernel_size`` and ``iter_patches``."""

    mosaic: np.ndarray
    mixer: Mixer = SCENE_MIXER
    kernel_size: tuple[int, int] = SCENE_KERNEL
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def iter_patches(self, bands: Sequence[str] | None = None) -> Iterator[np.ndarray]:
        names = tuple(bands or SCENE_BANDS)
        self.asked.append(names)
        channels = [SCENE_BANDS.index(b) for b in names]
        yield from (p[..., channels] for p in buffered(self.mosaic, self.mixer, self.kernel_size))


def blob(shape: tuple[int, int], row: int, col: int, peak: float) -> np.ndarray:
    rows, cols = np.indices(shape)
    return peak * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 2.0**2))


def test_node_draws_found_missed_and_false_alarm_chips():
    shape = (SCENE_MIXER.height_px, SCENE_MIXER.width_px)
    mosaic = np.random.default_rng(1).random((*shape, len(SCENE_BANDS)), dtype=np.float32)
    probability = np.maximum.reduce(
        [blob(shape, 20, 20, 0.9), blob(shape, 44, 50, 0.4), blob(shape, 50, 10, 0.8)]
    ).astype(np.float16)
    score_map = ScoreMap("lake", SCENE_MIXER, probability)
    detections = detect_peaks(score_map, 0.5, 4)
    dams_xy = [SCENE_MIXER.pixel_to_crs(c + 0.5, r + 0.5) for r, c in [(21, 20), (44, 50)]]
    dams = gpd.GeoDataFrame(
        {"dam_id": [1, 2]}, geometry=gpd.points_from_xy(*zip(*dams_xy, strict=True)),
        crs=SCENE_MIXER.crs,
    ).to_crs("EPSG:4326")  # fmt: skip
    scene = StreamedScene(mosaic)
    params = base_settings(SegmentSettings, "segment", close_ups={"size_px": 24})
    detection = base_settings(DetectionSettings, "detection", tolerance_m=50)

    draw = close_up_figures(
        {"lake": scene}, {"lake": score_map}, {"lake": detections}, {"lake": dams},
        {"threshold": 0.5}, model_metadata("fcn", SCENE_BANDS, 16, 1, None), params, detection,
    )  # fmt: skip
    assert scene.asked == []  # nothing is read before the figure is drawn
    figure = draw["lake"]()

    suptitle, titles = figure_texts(figure)
    assert titles == ["dam found 0.900", "missed dam (max 0.40)", "false alarm 0.800"]
    assert "3 shown" in suptitle and "24 x 24 px (240 m)" in suptitle
    assert scene.asked == [("B4", "B3", "B2")]
