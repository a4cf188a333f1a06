"""Composed tiles kept on disk, so that each tile of the planet is composed once.

Composing a 1024-pixel tile (valleys, dams, reservoirs, land cover) takes one to two seconds;
reading it back takes milliseconds. The publication of inventories composes every tile of the
regions, and the patch export needs the same tiles again in other processes: the cache makes
the second time a read. A tile is stored losslessly with the state of its random generator,
so a tile read back renders the very same pixels as one composed afresh.

Entries live under ``<folder>/<planet fingerprint>/``. The fingerprint covers the planet's
settings and the source code of every module that composes a tile, so a change to either
starts a new folder instead of reading stale tiles. Writes go to a temporary file renamed into
place, so concurrent processes never read half a tile. Processes that want the same missing
tile at once (the scan's workers at a shared edge) take turns through a lock file: one
composes it, the others read what it saved.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.dams import DamTruth
from dam_detection.image_sources.simulated.scene import SceneLayout

if TYPE_CHECKING:
    from dam_detection.image_sources.simulated.world import Planet, TileKey

#: Modules whose code decides a composed tile.
_COMPOSING_MODULES = (
    "canvas", "dams", "farm_ponds", "landcover", "mines", "negatives", "noise", "rivers",
    "scene", "shapes", "sites", "world", "tile_cache",
)  # fmt: skip


@lru_cache(maxsize=1)
def _code_digest() -> str:
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _COMPOSING_MODULES:
        digest.update((folder / f"{name}.py").read_bytes())
    return digest.hexdigest()


def planet_folder(planet: Planet) -> Path | None:
    """Where this planet's tiles are kept, or ``None`` without a cache folder."""
    if planet.cache_dir is None:
        return None
    identity = repr((planet.seed, planet.density, planet.tile_px, _code_digest()))
    return Path(planet.cache_dir) / hashlib.sha256(identity.encode()).hexdigest()[:16]


def _path(planet: Planet, key: TileKey) -> Path | None:
    folder = planet_folder(planet)
    return None if folder is None else folder / f"{key.epsg}_{key.ix}_{key.iy}.npz"


@contextmanager
def composing(planet: Planet, key: TileKey) -> Iterator[None]:
    """Hold the tile's lock while composing it (no-op without a cache folder).

    ``flock`` locks are released by the kernel when their process dies, so a killed worker
    never leaves a tile locked. On a file system without ``flock`` (some network mounts) two
    processes may compose the same tile: the result is the same, only the time is lost.
    """
    path = _path(planet, key)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.stem}.lock"), "a") as lock:
        with suppress(OSError):  # no locks on this file system: compose regardless
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def holds(planet: Planet, key: TileKey) -> bool:
    """Whether the tile is in the cache (``False`` without a cache folder)."""
    path = _path(planet, key)
    return path is not None and path.exists()


def load(planet: Planet, key: TileKey) -> SceneLayout | None:
    """The cached tile, or ``None`` when it is not cached (or no cache is configured)."""
    path = _path(planet, key)
    if path is None or not path.exists():
        return None
    with np.load(path, allow_pickle=False) as stored:
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(str(stored["rng_state"]))
        canvas = Canvas(
            terrain=stored["terrain"],
            water=stored["water"],
            cover=stored["cover"],
            structure=stored["structure"],
            brightness=stored["brightness"],
            rng=rng,
        )
        size = canvas.shape
        dams = [
            DamTruth(
                wall_centre=(float(x), float(y)),
                reservoir=np.unpackbits(bits)[: size[0] * size[1]].reshape(size).astype(bool),
                material=str(material),
                crest_length_px=float(crest),
                kind=str(kind),
            )
            for x, y, crest, material, kind, bits in zip(
                stored["dam_x"],
                stored["dam_y"],
                stored["dam_crest"],
                stored["dam_material"],
                stored["dam_kind"],
                stored["dam_reservoirs"],
                strict=True,
            )
        ]
        bridges = [(float(x), float(y)) for x, y in stored["bridges"]]
        lookalikes = [
            (str(kind), float(x), float(y))
            for kind, (x, y) in zip(stored["lookalike_kind"], stored["lookalike_xy"], strict=True)
        ]
    return SceneLayout(canvas, dams=dams, bridges=bridges, lookalikes=lookalikes)


def save(planet: Planet, key: TileKey, layout: SceneLayout) -> None:
    """Keep a composed tile (no-op without a cache folder)."""
    path = _path(planet, key)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = layout.canvas
    pixels = canvas.shape[0] * canvas.shape[1]
    reservoirs = np.zeros((len(layout.dams), (pixels + 7) // 8), np.uint8)
    for index, dam in enumerate(layout.dams):
        reservoirs[index] = np.packbits(dam.reservoir)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        np.savez(
            temporary,
            terrain=canvas.terrain,
            water=canvas.water,
            cover=canvas.cover,
            structure=canvas.structure,
            brightness=canvas.brightness,
            rng_state=np.array(json.dumps(canvas.rng.bit_generator.state)),
            dam_x=np.array([d.wall_centre[0] for d in layout.dams], np.float64),
            dam_y=np.array([d.wall_centre[1] for d in layout.dams], np.float64),
            dam_crest=np.array([d.crest_length_px for d in layout.dams], np.float64),
            dam_material=np.array([d.material for d in layout.dams], dtype="U16"),
            dam_kind=np.array([d.kind for d in layout.dams], dtype="U16"),
            lookalike_kind=np.array([k for k, _, _ in layout.lookalikes], dtype="U16"),
            lookalike_xy=np.array([(x, y) for _, x, y in layout.lookalikes], np.float64).reshape(
                -1, 2
            ),  # fmt: skip
            dam_reservoirs=reservoirs,
            bridges=np.array(layout.bridges, np.float64).reshape(-1, 2),
        )
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
