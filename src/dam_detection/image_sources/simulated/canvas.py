"""The canvas every feature draws into, before any light is simulated.

A canvas holds what the ground *is* (terrain height, water surface, land cover, structure
height); :mod:`.spectra` turns it into reflectance later. Patches and scenes use the same
canvas and the same feature generators, so a dam in a scene looks like a dam in a patch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Land-cover classes (uint8). Values are indices into spectra.SPECTRA.
WATER = 0
FOREST = 1
GRASS = 2
CROPS = 3
DRY_CROPS = 4
BARE_SOIL = 5
ROCK = 6
URBAN = 7
CONCRETE = 8
ASPHALT = 9
DIRT = 10
RIPRAP = 11
WET_SHORE = 12
SAND = 13
NUM_COVERS = 14


@dataclass
class Canvas:
    """Ground description of a rectangular window at 10 m.

    Attributes:
        terrain: Bare-ground elevation in metres, ``(rows, cols)`` float32.
        water: Water-surface elevation in metres, NaN where dry.
        cover: Land cover class per pixel (uint8, the constants of this module).
        structure: Height of walls, decks and buildings above ``terrain`` in metres.
        brightness: Per-pixel multiplicative variation of the cover's reflectance.
        rng: The canvas's random generator (features draw their parameters from it).
    """

    terrain: np.ndarray
    water: np.ndarray
    cover: np.ndarray
    structure: np.ndarray
    brightness: np.ndarray
    rng: np.random.Generator
    notes: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, shape: tuple[int, int], rng: np.random.Generator) -> Canvas:
        """A flat, dry, grass-covered canvas."""
        return cls(
            terrain=np.zeros(shape, np.float32),
            water=np.full(shape, np.nan, np.float32),
            cover=np.full(shape, GRASS, np.uint8),
            structure=np.zeros(shape, np.float32),
            brightness=np.ones(shape, np.float32),
            rng=rng,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        rows, cols = self.terrain.shape
        return rows, cols

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` = (column, row) as float32 arrays."""
        rows, cols = self.shape
        y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
        return x, y

    def is_water(self) -> np.ndarray:
        """Boolean mask of water pixels."""
        return ~np.isnan(self.water)

    def surface_elevation(self) -> np.ndarray:
        """What a DSM such as ALOS AW3D30 sees: water surface, else ground plus structures."""
        return np.where(self.is_water(), self.water, self.terrain + self.structure)

    def add_water(self, mask: np.ndarray, level: np.ndarray | float) -> None:
        """Flood ``mask`` at ``level`` (a scalar or a per-pixel array)."""
        level_values = np.broadcast_to(np.asarray(level, np.float32), self.shape)
        self.water[mask] = level_values[mask]
        self.cover[mask] = WATER
        self.structure[mask] = 0.0

    def add_structure(
        self, mask: np.ndarray, cover: int, height: np.ndarray | float, dry: bool = True
    ) -> None:
        """Build on ``mask``: set its cover and height above ground, removing water if ``dry``."""
        heights = np.broadcast_to(np.asarray(height, np.float32), self.shape)
        if dry:
            self.water[mask] = np.nan
        self.cover[mask] = cover
        self.structure[mask] = heights[mask]
