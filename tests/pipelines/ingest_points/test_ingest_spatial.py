"""Sphere distances, duplicate groups and the grid-block split."""

from __future__ import annotations

import numpy as np
import pytest

from dam_detection.pipelines.ingest_points import spatial

# One degree of latitude on the mean sphere, metres.
DEGREE_M = spatial.EARTH_RADIUS_M * np.pi / 180


def test_chord_and_metres_invert_each_other():
    chord = spatial.metres_to_chord(1234.5)
    assert spatial.chord_to_metres(chord) == pytest.approx(1234.5)


def test_duplicate_groups_chain_neighbours_and_leave_loners_alone():
    # 0-1 are 30 m apart, 1-2 another 30 m (a chain), 3 is 1 km away.
    lat = np.array([0.0, 30 / DEGREE_M, 60 / DEGREE_M, 1000 / DEGREE_M])
    groups = spatial.duplicate_groups(spatial.unit_vectors(np.zeros(4), lat), distance_m=40)
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_first_of_groups_keeps_lowest_priority_then_first_row():
    groups = np.array([0, 0, 1, 1, 1])
    priority = np.array([5.0, 1.0, 2.0, 2.0, 3.0])
    assert spatial.first_of_groups(groups, priority).tolist() == [False, True, True, False, False]


def test_within_distance_near_the_antimeridian():
    targets = spatial.unit_vectors(np.array([179.9999]), np.array([0.0]))
    queries = spatial.unit_vectors(np.array([-179.9999, -179.9]), np.array([0.0, 0.0]))
    assert spatial.within_distance(queries, targets, 100.0).tolist() == [True, False]


def test_grid_assignment_is_seeded_and_keeps_blocks_whole():
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-105, -95, 2000), rng.uniform(35, 45, 2000)
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    first = spatial.random_grid_cell_assignment(lon, lat, 100.0, fractions, seed=3)
    again = spatial.random_grid_cell_assignment(lon, lat, 100.0, fractions, seed=3)
    other = spatial.random_grid_cell_assignment(lon, lat, 100.0, fractions, seed=4)
    assert (first == again).all() and (first != other).any()
    assert set(first) == {"train", "val", "test"}
    assert 0.5 < np.mean(first == "train") < 0.9
    # Points 1 m apart sit in one block (unless on a block edge) and so in one split.
    near = spatial.random_grid_cell_assignment(
        np.array([-100.1, -100.1 + 1e-5]), np.array([40.1, 40.1]), 100.0, fractions, seed=3
    )
    assert near[0] == near[1]


def test_grid_assignment_rejects_bad_fractions_and_sizes():
    with pytest.raises(ValueError, match="sum to 1"):
        spatial.random_grid_cell_assignment(np.zeros(1), np.zeros(1), 10, {"train": 0.5}, 0)
    with pytest.raises(ValueError, match="block_size_km"):
        spatial.random_grid_cell_assignment(np.zeros(1), np.zeros(1), 0, {"train": 1.0}, 0)


def test_smallest_cross_split_distance():
    lat = np.array([0.0, 100 / DEGREE_M, 250 / DEGREE_M, 5000 / DEGREE_M])
    vectors = spatial.unit_vectors(np.zeros(4), lat)
    distance = spatial.smallest_cross_split_distance_m(vectors, ["train", "train", "val", "test"])
    assert distance == pytest.approx(150.0, abs=0.01)
    assert spatial.smallest_cross_split_distance_m(vectors, ["train"] * 4) is None
