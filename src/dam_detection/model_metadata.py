"""What a trained model needs from its input, written beside the ``.keras`` file.

``train`` writes one JSON document per model (``data/06_models/<model>.json``) and ``segment``
checks it before predicting: bands by name and order (a model trained on ``[B2, B3, B4]`` must
not be handed ``[B4, B3, B2]``, although the channel count agrees), and for the FCN that the
scenes' overlap covers its receptive field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

ModelRole = Literal["classifier", "fcn"]


def model_metadata(
    role: ModelRole,
    bands: Sequence[str],
    patch_radius: int,
    receptive_field_px: int | None,
    input_size_px: int | None,
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    """The metadata document of a trained model.

    Args:
        role: ``classifier`` (one score per crop) or ``fcn`` (a score per pixel).
        bands: Band names in channel order.
        patch_radius: Radius of the training patches (``2 r + 1`` pixels across).
        receptive_field_px: Pixels across that decide one output pixel (FCN), else ``None``.
        input_size_px: Fixed input side (classifier crops), ``None`` for any size.
        weights_sha256: The model's fingerprint (:func:`weights_fingerprint`).

    Returns:
        A JSON-able dictionary.
    """
    return {
        "role": role,
        "bands": list(bands),
        "patch_size_px": 2 * int(patch_radius) + 1,
        "receptive_field_px": receptive_field_px,
        "input_size_px": input_size_px,
        "weights_sha256": weights_sha256,
    }


def weights_fingerprint(weights: Sequence[Any]) -> str:
    """SHA-256 of a model's weights, in layer order: the same model, the same fingerprint."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for array in weights:
        values = np.ascontiguousarray(array)
        digest.update(str(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def check_bands(metadata: Mapping[str, Any], bands: Sequence[str], what: str) -> list[str]:
    """The model's bands, after checking that ``bands`` names them in the same order.

    Args:
        metadata: The model's metadata document.
        bands: Bands the caller would feed, by name; empty takes the model's.
        what: Where ``bands`` come from, for the message (``segment.bands``).

    Returns:
        The bands to feed, in the model's order.

    Raises:
        ValueError: Naming the bands that differ or are out of order.
    """
    trained = list(metadata["bands"])
    wanted = list(bands) or trained
    if wanted == trained:
        return trained
    missing = [band for band in trained if band not in wanted]
    extra = [band for band in wanted if band not in trained]
    detail = (
        f"missing {missing}, not trained on {extra}"
        if missing or extra
        else "the same bands in another order"
    )
    raise ValueError(
        f"the {metadata['role']} was trained on bands {trained} but {what} is {wanted} ({detail}); "
        f"set {what} to {trained} or retrain (kedro run --pipelines train)"
    )


def check_overlap(metadata: Mapping[str, Any], kernel_size: Sequence[int], scene: str) -> None:
    """Check that a scene's patch overlap holds the FCN's receptive field.

    Each exported patch carries ``kernel_size / 2`` pixels of its neighbours on every side;
    a pixel at the core's edge needs ``(receptive_field - 1) / 2`` of them to be scored as if
    the scene were whole.

    Raises:
        ValueError: If the overlap is too small, naming the setting to change.
    """
    field = metadata.get("receptive_field_px")
    if field is None:
        return
    needed = (int(field) - 1) // 2
    have = min(int(size) // 2 for size in kernel_size)
    if have < needed:
        raise ValueError(
            f"scene {scene}: patches overlap by {have} px but the FCN's {field} px receptive "
            f"field needs {needed}; export the scenes with gee_export.scene_export.kernel_size "
            f"of at least [{2 * needed}, {2 * needed}]"
        )
