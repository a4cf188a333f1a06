"""Drawing of the patch gallery: sample records of each kind as RGB, NDWI and elevation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dam_detection.bands import ELEVATION_BAND, NDWI_BAND, POINT_INDEX_KEY, RGB_BANDS
from dam_detection.datasets.tfrecord_files import TFRecordFiles
from dam_detection.tfrecord_codec import decode_example

Sample = tuple[int, dict[str, np.ndarray]]
_PANELS = ("RGB", NDWI_BAND, ELEVATION_BAND)


def interleave_files(files: TFRecordFiles) -> Iterator[bytes]:
    """Records taken from every file in turn, so that each kind turns up early.

    Points are exported in ``point_index`` order, which groups them by source and so by kind;
    reading file after file would reach the last kind only at the end of the export.
    """
    readers = [files.iter_records(path) for path in files.paths]
    while readers:
        for reader in list(readers):
            record = next(reader, None)
            if record is None:
                readers.remove(reader)
            else:
                yield record


def sample_patches_by_kind(
    records: Iterable[bytes],
    kind_of: Mapping[int, str],
    kinds: Sequence[str],
    per_kind: int,
) -> dict[str, list[Sample]]:
    """The first ``per_kind`` records of each kind, reading no further than needed.

    Args:
        records: Serialized patch records, in file order.
        kind_of: ``point_index`` to the point's kind.
        kinds: Kinds wanted.
        per_kind: Records wanted per kind.

    Returns:
        Kind to ``(point_index, features)`` samples; a kind without records maps to ``[]``.
    """
    samples: dict[str, list[Sample]] = {kind: [] for kind in kinds}
    wanted = len(kinds) * per_kind
    found = 0
    for record in records:
        features = decode_example(record)
        index_value = features.get(POINT_INDEX_KEY)
        if index_value is None or len(index_value) != 1:
            continue
        point_index = int(index_value[0])
        kind = kind_of.get(point_index)
        if kind in samples and len(samples[kind]) < per_kind:
            # bands are float arrays; only a bytes feature would be a list, and none is drawn
            samples[kind].append((point_index, features))  # type: ignore[arg-type]
            found += 1
            if found == wanted:
                break
    return samples


def _square(values: np.ndarray | None) -> np.ndarray | None:
    if values is None or not len(values):
        return None
    side = math.isqrt(len(values))
    if side * side != len(values):
        return None  # a wrong-length band (real exports have them): shown as missing
    return np.asarray(values, dtype=np.float32).reshape(side, side)


def _draw_panel(
    axis: Axes, panel: str, features: Mapping[str, np.ndarray], reflectance_max: float
) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    if panel == "RGB":
        channels = [_square(features.get(band)) for band in RGB_BANDS]
        present = [channel for channel in channels if channel is not None]
        if len(present) < len(RGB_BANDS) or len({c.shape for c in present}) != 1:
            axis.text(0.5, 0.5, "no RGB", ha="center", va="center", transform=axis.transAxes)
            return
        image = np.clip(np.stack(present, axis=-1) / reflectance_max, 0.0, 1.0)
        axis.imshow(image, interpolation="nearest")
        centre = image.shape[0] // 2
        axis.plot([centre], [centre], marker="+", color="yellow", markersize=8)
        return
    values = _square(features.get(panel))
    if values is None:
        axis.text(0.5, 0.5, f"no {panel}", ha="center", va="center", transform=axis.transAxes)
        return
    if panel == NDWI_BAND:
        axis.imshow(values, cmap="RdBu", vmin=-1.0, vmax=1.0, interpolation="nearest")
    else:
        axis.imshow(values, cmap="terrain", interpolation="nearest")
        axis.set_xlabel(f"{values.min():.0f}-{values.max():.0f} m", fontsize=6)


def draw_gallery(
    samples: Mapping[str, Sequence[Sample]], per_kind: int, reflectance_max: float = 0.3
) -> Figure:
    """One row per kind; per sample an RGB (B4/B3/B2 stretched to ``reflectance_max``), an NDWI
    (-1 red to 1 blue) and an elevation panel (terrain colours, per-patch range).

    Args:
        samples: From :func:`sample_patches_by_kind`.
        per_kind: Samples per row (missing ones stay blank).
        reflectance_max: Reflectance shown as white.

    Returns:
        The figure (not attached to pyplot, so nothing leaks between runs).
    """
    kinds = list(samples) or ["(no records)"]
    columns = max(per_kind, 1) * len(_PANELS)
    figure = Figure(figsize=(1.5 * columns, 1.7 * len(kinds) + 0.6), layout="constrained")
    axes = figure.subplots(len(kinds), columns, squeeze=False)
    for row, kind in enumerate(kinds):
        kind_samples = list(samples.get(kind, []))
        for column in range(columns):
            axis = axes[row, column]
            sample_number, panel_number = divmod(column, len(_PANELS))
            if sample_number >= len(kind_samples):
                axis.set_axis_off()
                if column == 0:
                    note = axis.text(0, 0.5, f"{kind}: no records", transform=axis.transAxes)
                    note.set_in_layout(False)  # else the long note widens the first column
                continue
            point_index, features = kind_samples[sample_number]
            panel = _PANELS[panel_number]
            _draw_panel(axis, panel, features, reflectance_max)
            title = panel if panel_number else f"#{point_index} {panel}"
            axis.set_title(title, fontsize=7)
            if column == 0:
                axis.set_ylabel(kind, fontsize=10)
    figure.suptitle(
        f"Sample patches by kind (RGB stretched 0-{reflectance_max:g}; NDWI -1 red to 1 blue; "
        "elevation per patch)",
        fontsize=9,
    )
    return figure
