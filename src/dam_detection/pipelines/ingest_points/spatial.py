"""Spatial helpers: distances on the sphere with a k-d tree, duplicate merging, grid splits.

Points go to 3-D unit vectors so that a k-d tree answers "within d metres" anywhere on Earth
(no zone seams, no poles): for the short distances used here the chord is the arc to within
micrometres, and chord and arc convert exactly anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pyproj import Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Mean Earth radius in metres (IUGG).
EARTH_RADIUS_M = 6_371_008.8
#: Equal-area CRS for the split grid: blocks have the same ground area at every latitude.
GRID_CRS = "EPSG:6933"


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Longitudes and latitudes in degrees to ``(N, 3)`` unit vectors."""
    lon_rad, lat_rad = np.radians(lon), np.radians(lat)
    cos_lat = np.cos(lat_rad)
    return np.column_stack([cos_lat * np.cos(lon_rad), cos_lat * np.sin(lon_rad), np.sin(lat_rad)])


def metres_to_chord(distance_m: float) -> float:
    """Great-circle distance in metres to the chord between unit vectors."""
    return 2.0 * np.sin(min(distance_m / EARTH_RADIUS_M, np.pi) / 2.0)


def chord_to_metres(chord: np.ndarray | float) -> np.ndarray | float:
    """Chord between unit vectors to great-circle distance in metres."""
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0))


def duplicate_groups(vectors: np.ndarray, distance_m: float) -> np.ndarray:
    """Group points that are chained within ``distance_m`` of each other.

    Args:
        vectors: ``(N, 3)`` unit vectors.
        distance_m: Points closer than this are duplicates; 0 merges exact repeats only.

    Returns:
        A group label per point; points alone get a group of their own.
    """
    count = len(vectors)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    tree = cKDTree(vectors, balanced_tree=False, compact_nodes=False)
    pairs = tree.query_pairs(metres_to_chord(distance_m), output_type="ndarray")
    graph = coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count)
    )
    return connected_components(graph, directed=False)[1]


def first_of_groups(groups: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Mask of the one row kept per group: the smallest ``priority`` (ties: first row).

    Args:
        groups: Group label per row.
        priority: Sort key per row; lower wins.

    Returns:
        Boolean mask, ``True`` for the representative of each group.
    """
    order = np.lexsort((np.arange(len(groups)), priority, groups))
    keep = np.zeros(len(groups), dtype=bool)
    first = np.ones(len(order), dtype=bool)
    first[1:] = groups[order][1:] != groups[order][:-1]
    keep[order[first]] = True
    return keep


def within_distance(queries: np.ndarray, targets: np.ndarray, distance_m: float) -> np.ndarray:
    """Mask of the ``queries`` that lie within ``distance_m`` of any of ``targets``."""
    if len(queries) == 0 or len(targets) == 0:
        return np.zeros(len(queries), dtype=bool)
    tree = cKDTree(targets, balanced_tree=False, compact_nodes=False)
    chord, _ = tree.query(
        queries, k=1, distance_upper_bound=metres_to_chord(distance_m), workers=-1
    )
    return np.isfinite(chord)


def random_grid_cell_assignment(
    lon: np.ndarray,
    lat: np.ndarray,
    block_size_km: float,
    fractions: Mapping[str, float],
    seed: int,
) -> np.ndarray:
    """Assign points to splits by square equal-area grid blocks (torchgeo's grid assignment).

    Every block goes to one split, so points in a block never straddle splits. Blocks are
    shuffled with ``seed`` and cut in ``fractions`` of the blocks.

    Args:
        lon: Longitudes, degrees.
        lat: Latitudes, degrees.
        block_size_km: Side of a block on the ground (EPSG:6933), kilometres.
        fractions: Split name to fraction of the blocks; must sum to 1.
        seed: Shuffle seed.

    Returns:
        The split name of every point.

    Raises:
        ValueError: If the fractions do not sum to 1 or the block size is not positive.
    """
    names = list(fractions)
    shares = np.array([float(fractions[name]) for name in names])
    if not np.isclose(shares.sum(), 1.0) or (shares < 0).any():
        raise ValueError(
            f"ingest_points.split.fractions {dict(fractions)} must be >= 0 and sum to 1"
        )
    if block_size_km <= 0:
        raise ValueError(f"ingest_points.split.block_size_km must be > 0, got {block_size_km}")
    if len(lon) == 0:
        return np.zeros(0, dtype=object)
    x, y = Transformer.from_crs("EPSG:4326", GRID_CRS, always_xy=True).transform(lon, lat)
    size = block_size_km * 1000.0
    # One integer per block (EPSG:6933 spans about +-17,367 km, so 2**31 columns is plenty).
    cells = np.floor(np.asarray(x) / size).astype(np.int64) * 2**32 + np.floor(
        np.asarray(y) / size
    ).astype(np.int64)
    unique_cells, cell_of_point = np.unique(cells, return_inverse=True)
    shuffled = np.random.default_rng(seed).permutation(len(unique_cells))
    bounds = np.round(np.cumsum(shares) * len(unique_cells)).astype(np.int64)
    split_of_rank = np.searchsorted(bounds, np.arange(len(unique_cells)), side="right")
    split_of_cell = np.empty(len(unique_cells), dtype=np.int64)
    split_of_cell[shuffled] = np.minimum(split_of_rank, len(names) - 1)
    return np.asarray(names, dtype=object)[split_of_cell[cell_of_point.ravel()]]


def smallest_cross_split_distance_m(
    vectors: np.ndarray, splits: Sequence[str] | np.ndarray
) -> float | None:
    """Smallest great-circle distance in metres between points of different splits.

    Returns:
        The distance, or ``None`` when fewer than two splits hold points.
    """
    splits = np.asarray(splits)
    names = np.unique(splits)
    if len(names) < 2:
        return None
    best = np.inf
    for name in names[:-1]:  # each pair of splits is seen from its first member
        inside = splits == name
        others = vectors[~inside]
        # The tree holds the smaller side; the best chord so far prunes the search.
        tree_points, queries = (
            (others, vectors[inside]) if len(others) <= inside.sum() else (vectors[inside], others)
        )
        tree = cKDTree(tree_points, balanced_tree=False, compact_nodes=False)
        # A few queries give an upper bound that prunes the full search.
        sample = queries[:: max(1, len(queries) // 256)]
        best = min(best, float(tree.query(sample, k=1)[0].min()))
        chord, _ = tree.query(queries, k=1, distance_upper_bound=best * (1 + 1e-9), workers=-1)
        best = min(best, float(chord.min()))
    return float(chord_to_metres(best))
