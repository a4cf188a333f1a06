"""The planet: one world that every export sees the same way.

The planet is cut into square tiles of ``Planet.tile_px`` pixels (1024 by default) at
:data:`PIXEL_M` metres on the grid of each UTM zone (tile ``(ix, iy)`` of zone ``epsg`` covers
eastings ``ix * tile_m`` to ``(ix + 1) * tile_m`` and northings ``iy * tile_m`` to
``(iy + 1) * tile_m``). A tile is a pure
function of the planet's seed and settings, the tile's key and, for its light, the composite's
month: valleys with rivers, dams and their reservoirs, bridges, natural lakes, levees, towns and
roads (:func:`.scene.compose_scene`), then reflectance, elevation, clouds, elevation voids and
masked pixels. Every export samples these tiles, so a patch, a scene and a region cut into
many scenes all see the same terrain, water and structures:

* a scene on the UTM grid of its zone copies tile pixels one for one;
* a patch on Earth Engine's degree grid takes, for each of its pixel centres, the tile pixel
  that contains it (nearest neighbour, as Earth Engine resamples by default).

Tiles meet their neighbours through a quiet border (:class:`.scene.QuietBorder`): within
:data:`BORDER_PX` of a tile edge the valleys blend into the planet's base terrain (a function
of place) and rivers narrow to nothing, so terrain is continuous and no water is cut by an
edge. Land cover, haze and clouds still change at tile edges; structures stay at least
``Planet.margin_px`` inside them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from dam_detection.bands import ELEVATION_BAND
from dam_detection.image_sources.simulated import tile_cache
from dam_detection.image_sources.simulated.bands_out import (
    render_bands,
    void_stripes,
)
from dam_detection.image_sources.simulated.noise import world_noise
from dam_detection.image_sources.simulated.scene import QuietBorder, SceneLayout, compose_scene
from dam_detection.image_sources.simulated.spectra import sample_atmosphere

#: Metres per pixel of the planet.
PIXEL_M = 10.0
#: Spacing of the lattice the base terrain is interpolated from (divides every tile side).
_BASE_LATTICE_M = 160.0


@dataclass(frozen=True)
class Density:
    """How many of each structure the planet builds, per 100 km² (a tile is 104.9 km²).

    Counts per tile are Poisson draws with these means. Some real regions have a dam every
    few km² (farm ponds); the default is a dam-rich upland, about one valley dam per 10 km².
    Farm ponds and weirs are off unless asked for (docs/simulated_earth.md says why).

    Attributes:
        dams: Dams across valleys (concrete and earth walls holding reservoirs).
        bridges: Bridges over rivers; one that a reservoir reaches drowns (only dams hold
            lakes), so fewer stand where dams are dense.
        lakes: Natural lakes with outlets (look-alike reservoirs without a wall).
        levees: Stretches of embankment along a bank (look-alike walls along the water).
        towns: Settlements per 250 x 250 pixels.
        roads: Roads crossing a tile.
        farm_ponds: Farm-pond dams: small earth embankments round hillside ponds.
        weirs: Low weirs across rivers (dams too, a pixel or two wide at 10 m).
        quarries: Open pits with benches, often a pit lake (look-alikes).
        tailings: Tailings ponds behind closed embankments (look-alikes).
    """

    dams: float = 10.0
    bridges: float = 4.0
    lakes: float = 2.0
    levees: float = 2.0
    towns: float = 0.4
    roads: float = 4.0
    farm_ponds: float = 0.0
    weirs: float = 0.0
    quarries: float = 0.5
    tailings: float = 0.3

    def __post_init__(self) -> None:
        for name in ("dams", "bridges", "lakes", "levees", "towns", "roads", "farm_ponds",
                     "weirs", "quarries", "tailings"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"density.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Planet:
    """Everything that decides the planet's pixels (hashable: tiles are cached by it).

    Attributes:
        seed: World seed.
        density: Structures per 100 km².
        cloud_rate: Share of tiles whose composite keeps some cloud.
        void_rate: Share of tiles with an elevation void stripe.
        missing_band_rate: Share of the area whose pixels are masked in the composite (a
            cloud-mask hole) or in the elevation model (a void); a record whose centre pixel
            falls there lacks that band, as Earth Engine's table exports do.
        tile_px: Pixels along a tile side (a multiple of 16): the default 1024 holds whole
            valleys; tests use small tiles to stay fast.
        cache_dir: Folder where composed tiles are kept (:mod:`.tile_cache`); ``None``
            composes every tile afresh. Not part of what decides a pixel.
    """

    seed: int = 42
    density: Density = field(default_factory=Density)
    cloud_rate: float = 0.15
    void_rate: float = 0.05
    missing_band_rate: float = 0.01
    tile_px: int = 1024
    cache_dir: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.tile_px < 128 or self.tile_px % 16:
            raise ValueError(f"tile_px must be a multiple of 16 >= 128, got {self.tile_px}")

    @property
    def tile_m(self) -> float:
        """Metres along a tile side."""
        return self.tile_px * PIXEL_M

    @property
    def border_px(self) -> int:
        """Width of the quiet border (1/16 of a tile)."""
        return self.tile_px // 16

    @property
    def margin_px(self) -> int:
        """Structures (and what they flood) stay this far inside a tile edge (5/32 of a tile)."""
        return self.tile_px * 5 // 32

    def tile_left(self, key: TileKey) -> float:
        """Easting of a tile's west edge, metres."""
        return key.ix * self.tile_m

    def tile_top(self, key: TileKey) -> float:
        """Northing of a tile's north edge, metres."""
        return (key.iy + 1) * self.tile_m


@dataclass(frozen=True)
class TileKey:
    """One tile: its UTM zone (EPSG code) and its column and row (northward) in the zone."""

    epsg: int
    ix: int
    iy: int


@dataclass(frozen=True)
class DamRecord:
    """A dam the planet built, in its zone's metres.

    Attributes:
        dam_id: Unique over the planet (tile and rank within it).
        x: Easting of the wall centre.
        y: Northing of the wall centre.
        material: ``concrete`` or ``earth``.
        crest_length_m: Length of the crest with its abutments.
        reservoir: Outline of the reservoir as ``(n, 2)`` eastings and northings (empty when
            the dam holds no water).
        reservoir_area_m2: Area of the reservoir.
        kind: ``reservoir``, ``farm_pond`` or ``weir`` (:data:`.dams.DAM_KINDS`).
    """

    dam_id: int
    x: float
    y: float
    material: str
    crest_length_m: float
    reservoir: np.ndarray
    reservoir_area_m2: float
    kind: str = "reservoir"


@dataclass(frozen=True)
class TileFeatures:
    """What a tile holds, for inventories, ground truth and water-edge sampling.

    Attributes:
        key: The tile.
        dams: Its dams.
        bridges: ``(n, 2)`` eastings and northings of bridge decks.
        water: Packed bits of the tile's water mask (``np.unpackbits``, rows from the north).
        tile_px: Pixels along the tile's side.
        lookalikes: ``(kind, easting, northing)`` of what looks like a dam and is not
            (``levee``, ``lake_outlet``, ``quarry``, ``tailings``; bridges are above).
    """

    key: TileKey
    dams: tuple[DamRecord, ...]
    bridges: np.ndarray
    water: np.ndarray
    tile_px: int
    lookalikes: tuple[tuple[str, float, float], ...] = ()

    def water_mask(self) -> np.ndarray:
        """The tile's water mask, ``(tile_px, tile_px)`` bool, rows from the north."""
        size = self.tile_px
        return np.unpackbits(self.water)[: size * size].reshape(size, size).astype(bool)


@dataclass(frozen=True)
class TileImage:
    """A tile's bands for one composite, masked pixels 0, with the masks themselves."""

    bands: dict[str, np.ndarray]
    optical_mask: np.ndarray
    elevation_mask: np.ndarray


def zone_epsg(lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
    """The UTM zone (WGS 84, EPSG 326xx north, 327xx south) of each location."""
    lon_arr, lat_arr = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    zone = (np.floor((lon_arr + 180.0) / 6.0).astype(np.int64) % 60) + 1
    return np.where(lat_arr >= 0, 32600, 32700) + zone


def _tile_rng(planet: Planet, key: TileKey, salt: int) -> np.random.Generator:
    return np.random.default_rng(
        [planet.seed & 0xFFFFFFFF, key.epsg, key.ix + (1 << 20), key.iy + (1 << 20), salt]
    )


def _dam_id(key: TileKey, rank: int) -> int:
    zone = key.epsg % 100 + (60 if key.epsg >= 32700 else 0)
    return (((zone << 20) | (key.ix & 0xFFFFF)) << 20 | (key.iy & 0xFFFFF)) * 64 + rank


def base_terrain(planet: Planet, key: TileKey) -> np.ndarray:
    """The planet's own terrain over a tile (metres), continuous from tile to tile.

    Interpolated from world noise on a lattice every 160 m that the tile edges share.
    """
    steps = int(planet.tile_m / _BASE_LATTICE_M)
    gx = planet.tile_left(key) + np.arange(steps + 1) * _BASE_LATTICE_M
    gy = planet.tile_top(key) - np.arange(steps + 1) * _BASE_LATTICE_M
    x, y = np.meshgrid(gx, gy)
    lattice = (
        650.0
        + 450.0 * world_noise(x, y, planet.seed + 101, 80_000.0, octaves=2)
        + 40.0 * world_noise(x, y, planet.seed + 102, 2_500.0, octaves=3)
    )
    position = (np.arange(planet.tile_px) + 0.5) * PIXEL_M / _BASE_LATTICE_M
    index = np.minimum(np.floor(position).astype(np.intp), steps - 1)
    frac = (position - index).astype(np.float64)
    rows = lattice[index] * (1 - frac)[:, None] + lattice[index + 1] * frac[:, None]
    return (rows[:, index] * (1 - frac) + rows[:, index + 1] * frac).astype(np.float32)


@lru_cache(maxsize=2)
def _border_weight(tile_px: int, border_px: int) -> np.ndarray:
    position = np.arange(tile_px) + 0.5
    to_edge = np.minimum(position, tile_px - position)
    t = np.clip(to_edge / border_px, 0.0, 1.0)
    ramp = t * t * (3 - 2 * t)
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


@lru_cache(maxsize=3)
def compose_tile(planet: Planet, key: TileKey) -> SceneLayout:
    """The ground of one tile (cached: exports ask for the same tiles again and again)."""
    cached = tile_cache.load(planet, key)
    if cached is not None:
        return cached
    with tile_cache.composing(planet, key):
        # Another process may have composed it while this one waited for the lock.
        cached = tile_cache.load(planet, key)
        if cached is not None:
            return cached
        layout = _compose(planet, key)
        tile_cache.save(planet, key, layout)
    return layout


def _compose(planet: Planet, key: TileKey) -> SceneLayout:
    rng = _tile_rng(planet, key, 1)
    area_100km2 = (planet.tile_m / 1000.0) ** 2 / 100.0
    density = planet.density
    options = {
        "dams": rng.poisson(density.dams * area_100km2),
        "bridges": rng.poisson(density.bridges * area_100km2),
        "lakes": rng.poisson(density.lakes * area_100km2),
        "levees": rng.poisson(density.levees * area_100km2),
        "towns": density.towns,
        "roads": rng.poisson(density.roads),
    }
    # The small works draw from their own generator: the valleys, dams and land cover of a
    # tile are the same with or without them.
    works = _tile_rng(planet, key, 3)
    options.update(
        farm_ponds=works.poisson(density.farm_ponds * area_100km2),
        weirs=works.poisson(density.weirs * area_100km2),
        quarries=works.poisson(density.quarries * area_100km2),
        tailings=works.poisson(density.tailings * area_100km2),
    )
    weight = _border_weight(planet.tile_px, planet.border_px)
    border = QuietBorder(weight, base_terrain(planet, key), planet.margin_px)
    return compose_scene((planet.tile_px, planet.tile_px), rng, options, border, works)


_FEATURES: OrderedDict[tuple[Planet, TileKey], TileFeatures] = OrderedDict()
#: Tiles whose features are kept (about 130 kB each).
_FEATURES_KEPT = 2048


def tile_features(planet: Planet, key: TileKey) -> TileFeatures:
    """The structures and water of a tile (cached; small next to the tile's pixels)."""
    cached = _FEATURES.get((planet, key))
    if cached is None:
        return _remember(planet, key, _compute_features(planet, key))
    _FEATURES.move_to_end((planet, key))  # least recently used goes first
    return cached


def prefetch_features(planet: Planet, keys: Sequence[TileKey], workers: int) -> None:
    """Compute the features of many tiles on the rendering pool (``workers`` processes)."""
    missing = [key for key in dict.fromkeys(keys) if (planet, key) not in _FEATURES]
    if workers <= 1 or len(missing) < 2:
        for key in missing:
            tile_features(planet, key)
        return
    from dam_detection.image_sources.simulated.patches import pool_map

    for key, features in zip(
        missing, pool_map(_features_task, [(planet, k) for k in missing], workers), strict=True
    ):
        _remember(planet, key, features)


def compose_ahead(planet: Planet, keys: Sequence[TileKey], workers: int) -> int:
    """Compose the tiles of ``keys`` that the tile cache lacks, on the rendering pool
    (``workers`` processes), into the cache, for other processes to read.

    Returns:
        How many were composed; 0 without a cache folder (nothing could be shared).
    """
    if tile_cache.planet_folder(planet) is None:
        return 0
    missing = [key for key in dict.fromkeys(keys) if not tile_cache.holds(planet, key)]
    if workers <= 1 or len(missing) < 2:
        for key in missing:
            compose_tile(planet, key)
        return len(missing)
    from dam_detection.image_sources.simulated.patches import pool_map

    pool_map(_compose_task, [(planet, key) for key in missing], workers)
    return len(missing)


def _compose_task(job: tuple[Planet, TileKey]) -> None:
    compose_tile(*job)  # into the cache: a layout is too large to send back


def _features_task(job: tuple[Planet, TileKey]) -> TileFeatures:
    return _compute_features(*job)


def _remember(planet: Planet, key: TileKey, features: TileFeatures) -> TileFeatures:
    _FEATURES[(planet, key)] = features
    while len(_FEATURES) > _FEATURES_KEPT:
        _FEATURES.popitem(last=False)
    return features


def _compute_features(planet: Planet, key: TileKey) -> TileFeatures:
    from skimage import measure  # only ground truth needs outlines

    layout = compose_tile(planet, key)
    left, top = planet.tile_left(key), planet.tile_top(key)
    dams = []
    for rank, dam in enumerate(layout.dams):
        outline = np.zeros((0, 2))
        area = float(dam.reservoir.sum()) * PIXEL_M**2
        if dam.reservoir.any():
            contours = measure.find_contours(np.pad(dam.reservoir, 1).astype(np.float32), 0.5)
            ring = max(contours, key=len) - 1.0 + 0.5  # rows, cols of pixel-centre coordinates
            outline = np.column_stack([left + ring[:, 1] * PIXEL_M, top - ring[:, 0] * PIXEL_M])
        dams.append(
            DamRecord(
                dam_id=_dam_id(key, rank),
                x=left + dam.wall_centre[0] * PIXEL_M,
                y=top - dam.wall_centre[1] * PIXEL_M,
                material=dam.material,
                crest_length_m=dam.crest_length_px * PIXEL_M,
                reservoir=outline,
                reservoir_area_m2=area,
                kind=dam.kind,
            )
        )
    bridges = np.array(
        [[left + bx * PIXEL_M, top - by * PIXEL_M] for bx, by in layout.bridges]
    ).reshape(-1, 2)
    water = np.packbits(layout.canvas.is_water())
    lookalikes = tuple(
        (kind, left + x * PIXEL_M, top - y * PIXEL_M) for kind, x, y in layout.lookalikes
    )
    return TileFeatures(key, tuple(dams), bridges, water, planet.tile_px, lookalikes)


#: Tile images kept per process by default (about 22 MB each at 1024 px): a row of the default
#: region and the next, so that patches straddling rows find both.
TILE_IMAGES_KEPT = 20
_TILE_IMAGES: OrderedDict[tuple[Planet, TileKey, int, tuple[str, ...]], TileImage] = OrderedDict()
_tile_images_kept = TILE_IMAGES_KEPT


def tile_image(planet: Planet, key: TileKey, month: int, bands: tuple[str, ...]) -> TileImage:
    """A tile's bands for the composite of ``month``, kept in a per-process LRU for the patches
    and blocks that share it (:func:`keep_tile_images` sizes it).
    """
    cache_key = (planet, key, int(month), tuple(bands))
    image = _TILE_IMAGES.get(cache_key)
    if image is None:
        image = render_tile_image(planet, key, month, tuple(bands))
        _TILE_IMAGES[cache_key] = image
        _trim_tile_images()
    else:
        _TILE_IMAGES.move_to_end(cache_key)  # least recently used goes first
    return image


def keep_tile_images(count: int) -> None:
    """Keep at most ``count`` tile images in this process from now on (at least 1).

    A region scan's worker keeps only the tiles of the block it reads, so that its memory is
    the same for a county and a continent.
    """
    global _tile_images_kept
    _tile_images_kept = max(int(count), 1)
    _trim_tile_images()


def clear_tile_images() -> None:
    """Forget every kept tile image of this process."""
    _TILE_IMAGES.clear()


def _trim_tile_images() -> None:
    while len(_TILE_IMAGES) > _tile_images_kept:
        _TILE_IMAGES.popitem(last=False)


def render_tile_image(
    planet: Planet, key: TileKey, month: int, bands: tuple[str, ...]
) -> TileImage:
    """A tile's bands for the composite of ``month``, rendered afresh (see :func:`tile_image`)."""
    layout = compose_tile(planet, key)
    rng = _tile_rng(planet, key, 1000 + month)
    atmosphere = sample_atmosphere(rng, month, planet.cloud_rate)
    # Light gets its own generator: the composed canvas (shared by every composite and kept
    # in caches) is never advanced, so a tile renders the same whatever was rendered before.
    canvas = replace(layout.canvas, rng=_tile_rng(planet, key, 2000 + month))
    images = render_bands(canvas, atmosphere, bands, rng)
    shape = layout.canvas.shape
    elevation_mask = void_stripes(shape, rng, planet.void_rate, (-1, -1))
    optical_mask = np.zeros(shape, bool)
    for optical, blob in _masked_blobs(rng, shape, planet.missing_band_rate):
        if optical:
            optical_mask |= blob
        else:
            elevation_mask |= blob
    for band, image in images.items():
        mask = elevation_mask if band == ELEVATION_BAND else optical_mask
        image[mask] = 0.0
    # Contiguous bands: every patch gathers its pixels from them by flat index.
    contiguous = {band: np.ascontiguousarray(image) for band, image in images.items()}
    return TileImage(contiguous, optical_mask, elevation_mask)


def _masked_blobs(
    rng: np.random.Generator, shape: tuple[int, int], share: float
) -> list[tuple[bool, np.ndarray]]:
    """Blobs covering about ``share`` of the tile: cloud-mask holes (True) or DSM voids."""
    rows, cols = shape
    mean_area = np.pi * (8.0**2 + 8.0 * 48.0 + 48.0**2) / 3.0  # radius uniform in [8, 48]
    blobs = []
    for _ in range(rng.poisson(share * rows * cols / mean_area)):
        radius = float(rng.uniform(8, 48))
        cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
        y, x = np.ogrid[0:rows, 0:cols]
        blobs.append(
            (bool(rng.random() < 0.5), (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < radius**2)
        )
    return blobs


@dataclass
class Sample:
    """Bands sampled at a set of locations, with the masks that explain zeros."""

    bands: dict[str, np.ndarray]
    optical_mask: np.ndarray
    elevation_mask: np.ndarray


def sample_zone(
    planet: Planet,
    month: int,
    bands: Sequence[str],
    epsg: int,
    x: np.ndarray,
    y: np.ndarray,
) -> Sample:
    """The planet's pixels containing each ``(x, y)`` of one UTM zone (any array shape)."""
    bands = tuple(bands)
    col = np.floor(np.asarray(x, np.float64) / PIXEL_M).astype(np.int64)
    row_north = np.floor(np.asarray(y, np.float64) / PIXEL_M).astype(np.int64)
    size = planet.tile_px
    ix, iy = col // size, row_north // size
    # Flat index into a tile's (rows from the north, columns) arrays: one gather per band.
    flat = (size - 1 - (row_north - iy * size)) * size + (col - ix * size)
    x_range, y_range = (int(ix.min()), int(ix.max())), (int(iy.min()), int(iy.max()))
    if x_range[0] == x_range[1] and y_range[0] == y_range[1]:
        # Most patches lie inside one tile: no per-tile selection to build.
        image = tile_image(planet, TileKey(int(epsg), x_range[0], y_range[0]), month, bands)
        return Sample(
            {band: np.take(image.bands[band], flat) for band in bands},
            np.take(image.optical_mask, flat),
            np.take(image.elevation_mask, flat),
        )
    out = {band: np.zeros(col.shape, np.float32) for band in bands}
    optical = np.zeros(col.shape, bool)
    elevation = np.zeros(col.shape, bool)
    # A patch or scene meets a handful of tiles: walk their small range of columns and rows.
    for tile_x in range(x_range[0], x_range[1] + 1):
        for tile_y in range(y_range[0], y_range[1] + 1):
            here = (ix == tile_x) & (iy == tile_y)
            if not here.any():
                continue
            image = tile_image(planet, TileKey(int(epsg), tile_x, tile_y), month, bands)
            where = flat[here]
            for band in bands:
                out[band][here] = np.take(image.bands[band], where)
            optical[here] = np.take(image.optical_mask, where)
            elevation[here] = np.take(image.elevation_mask, where)
    return Sample(out, optical, elevation)


def sample_block(
    planet: Planet,
    month: int,
    bands: Sequence[str],
    epsg: int,
    first_col: int,
    top_north: int,
    width: int,
    height: int,
) -> Sample:
    """A block of the planet's own grid of a zone, copied tile by tile (no per-pixel lookup).

    Args:
        planet: The planet.
        month: The composite's month.
        bands: Bands to return.
        epsg: The UTM zone.
        first_col: Column of the block's west pixel (easting / 10 m, floored).
        top_north: Row of the block's north pixel, counted northward (northing / 10 m, floored).
        width: Pixels across.
        height: Pixels down (southward from ``top_north``).
    """
    bands = tuple(bands)
    size = planet.tile_px
    out = {band: np.zeros((height, width), np.float32) for band in bands}
    optical = np.zeros((height, width), bool)
    elevation = np.zeros((height, width), bool)
    bottom_north = top_north - height + 1
    for tile_y in range(bottom_north // size, top_north // size + 1):
        for tile_x in range(first_col // size, (first_col + width - 1) // size + 1):
            # The overlap in global columns and northward rows.
            c0, c1 = max(first_col, tile_x * size), min(first_col + width, (tile_x + 1) * size)
            n0, n1 = max(bottom_north, tile_y * size), min(top_north + 1, (tile_y + 1) * size)
            image = tile_image(planet, TileKey(int(epsg), tile_x, tile_y), month, bands)
            # Tile rows count southward from its north edge; block rows from top_north.
            tile_rows = slice(size - 1 - (n1 - 1 - tile_y * size), size - (n0 - tile_y * size))
            tile_cols = slice(c0 - tile_x * size, c1 - tile_x * size)
            block_rows = slice(top_north - (n1 - 1), top_north - n0 + 1)
            block_cols = slice(c0 - first_col, c1 - first_col)
            for band in bands:
                out[band][block_rows, block_cols] = image.bands[band][tile_rows, tile_cols]
            optical[block_rows, block_cols] = image.optical_mask[tile_rows, tile_cols]
            elevation[block_rows, block_cols] = image.elevation_mask[tile_rows, tile_cols]
    return Sample(out, optical, elevation)


_TO_UTM: dict[int, Transformer] = {}


def to_zone(epsg: int) -> Transformer:
    """A cached transformer from longitude/latitude to a UTM zone."""
    if epsg not in _TO_UTM:
        _TO_UTM[epsg] = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    return _TO_UTM[epsg]


def sample_lonlat_grid(
    planet: Planet, month: int, bands: Sequence[str], lons: np.ndarray, lats: np.ndarray
) -> Sample:
    """The planet's pixels at the nodes of a regular grid (``lons`` across, ``lats`` down), as
    :func:`sample_lonlat` gives them.

    UTM zones are bands of longitude: a grid whose west and east columns lie in one zone lies in
    it whole, and is projected in one call without a per-pixel zone.
    """
    lons, lats = np.asarray(lons, np.float64), np.asarray(lats, np.float64)
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    zones = zone_epsg(lons[[0, -1]], lats[[0, -1]])
    if zones[0] != zones[1]:
        return sample_lonlat(planet, month, bands, grid_lon, grid_lat)
    x, y = to_zone(int(zones[0])).transform(grid_lon, grid_lat)
    return sample_zone(planet, month, bands, int(zones[0]), np.asarray(x), np.asarray(y))


def sample_lonlat(
    planet: Planet, month: int, bands: Sequence[str], lon: np.ndarray, lat: np.ndarray
) -> Sample:
    """The planet's pixels at each longitude/latitude, each from the tiles of its own zone."""
    lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    zones = zone_epsg(lon, lat)
    parts = {band: np.zeros(lon.shape, np.float32) for band in bands}
    optical = np.zeros(lon.shape, bool)
    elevation = np.zeros(lon.shape, bool)
    for epsg in np.unique(zones):
        here = zones == epsg
        x, y = to_zone(int(epsg)).transform(lon[here], lat[here])
        sample = sample_zone(planet, month, bands, int(epsg), np.asarray(x), np.asarray(y))
        for band in bands:
            parts[band][here] = sample.bands[band]
        optical[here] = sample.optical_mask
        elevation[here] = sample.elevation_mask
    return Sample(parts, optical, elevation)


def tiles_covering(
    planet: Planet, epsg: int, bounds: tuple[float, float, float, float]
) -> list[TileKey]:
    """Tiles of zone ``epsg`` meeting ``(xmin, ymin, xmax, ymax)`` in its metres."""
    xmin, ymin, xmax, ymax = bounds
    size = planet.tile_m
    return [
        TileKey(epsg, ix, iy)
        for iy in range(int(np.floor(ymin / size)), int(np.floor(ymax / size)) + 1)
        for ix in range(int(np.floor(xmin / size)), int(np.floor(xmax / size)) + 1)
    ]


def tile_key_of(planet: Planet, lon: float, lat: float) -> TileKey:
    """The tile holding a location."""
    epsg = int(zone_epsg(lon, lat))
    x, y = to_zone(epsg).transform(lon, lat)
    return TileKey(epsg, int(np.floor(x / planet.tile_m)), int(np.floor(y / planet.tile_m)))


__all__ = [
    "PIXEL_M",
    "DamRecord",
    "Density",
    "Planet",
    "Sample",
    "TileFeatures",
    "TileImage",
    "TILE_IMAGES_KEPT",
    "TileKey",
    "compose_ahead",
    "compose_tile",
    "prefetch_features",
    "sample_block",
    "sample_lonlat",
    "sample_lonlat_grid",
    "sample_zone",
    "tile_features",
    "clear_tile_images",
    "keep_tile_images",
    "render_tile_image",
    "tile_image",
    "tile_key_of",
    "tiles_covering",
    "zone_epsg",
]
