"""Keras 3 models: patch classifiers selectable by name and a dilated fully convolutional net.

Built from stock layers and the registered layers of :mod:`dam_detection.model_layers`, so the
saved ``.keras`` files load in safe mode once that module is imported. The band order
is written into the input layer's name (``bands-B2-B3-B4-NDWI-AVE``) so a consumer can check it
with :func:`model_bands`; the FCN's receptive field is written into its name (``..._rf127px``)
so ``model.summary()`` states it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import keras
from keras import layers

from dam_detection.bands import ELEVATION_BAND
from dam_detection.model_graph import layer_inputs
from dam_detection.model_layers import (
    CropToReference,
    DilatedConv2D,
    FusedBatchNormalization,
    LocalRelief,
)

ClassifierName = Literal["residual_cnn", "plain_cnn", "mobilenet_v2"]
_CLASSIFIER_RELIEF = "train.classifier.elevation_relief"
_BANDS_PREFIX = "bands-"
# Names of the heatmaps of an FCN ensemble's members (``dam_probability_0``, ...).
_MEMBER_PREFIX = "dam_probability_"
# Trainings here are a few hundred steps: Keras' default 0.99 leaves the moving statistics far
# from the data's, and validation sees a different network than training did.
_BN_MOMENTUM = 0.9


def bands_input(bands: Sequence[str], size: int | None) -> keras.KerasTensor:
    """Model input for ``(size, size, len(bands))`` images; ``None`` for any size."""
    return keras.Input(shape=(size, size, len(bands)), name=_BANDS_PREFIX + "-".join(bands))


@dataclass(frozen=True)
class Relief:
    """The elevation band as height above its surroundings (:class:`LocalRelief`'s arguments).

    Attributes:
        window: Odd side of the square whose mean height is subtracted, pixels.
        gain: Factor on the normalised difference (``std / unit_m``: units of ``unit_m``).
        no_data: Normalised heights that mean "no height here" (masked pixels, voids).
    """

    window: int
    gain: float = 1.0
    no_data: tuple[float, ...] = (0.0,)


def relief_from_settings(bands: Sequence[str], relief: Mapping[str, Any] | None,
                         mean: Sequence[float] | None = None,
                         std: Sequence[float] | None = None) -> Relief | None:  # fmt: skip
    """The :class:`Relief` an ``elevation_relief`` setting (``window_px``, ``unit_m``) asks for.

    Args:
        bands: Band names in channel order.
        relief: The setting; ``None`` (absolute heights) gives ``None``.
        mean: Per-band means of ``stats.json``, in ``bands`` order, as the inputs are normalised
            with. With ``std`` they give the relief its units (``unit_m``) and the normalised
            height of an elevation void (raw 0); without them (timing benchmarks) the relief
            has gain 1 and leaves out masked pixels only.
        std: Per-band standard deviations, likewise.
    """
    if not relief:
        return None
    if mean is None or std is None or ELEVATION_BAND not in bands:
        return Relief(int(relief["window_px"]))
    band = list(bands).index(ELEVATION_BAND)
    return Relief(int(relief["window_px"]), gain=float(std[band]) / float(relief["unit_m"]),
                  no_data=(0.0, -float(mean[band]) / float(std[band])))  # fmt: skip


def _with_relief(inputs: keras.KerasTensor, bands: Sequence[str], relief: Relief | None,
                 setting: str) -> keras.KerasTensor:  # fmt: skip
    """``inputs`` with the elevation channel replaced by its local relief (``None``: as is).

    Raises:
        ValueError: If there is no elevation band to take the relief of.
    """
    if relief is None:
        return inputs
    if ELEVATION_BAND not in bands:
        raise ValueError(
            f"the elevation relief needs the {ELEVATION_BAND} band, and the bands are "
            f"{list(bands)}: add it, or set {setting} to null"
        )
    channel = list(bands).index(ELEVATION_BAND)
    return LocalRelief(channel, relief.window, relief.gain, relief.no_data)(inputs)


def model_bands(model: keras.Model) -> tuple[str, ...]:
    """Band names, in channel order, that ``model`` was trained on (from its input name).

    Raises:
        ValueError: If the model was not built by this module.
    """
    name = model.inputs[0].name
    if not name.startswith(_BANDS_PREFIX):
        raise ValueError(f"model input {name!r} does not record its bands")
    return tuple(name[len(_BANDS_PREFIX) :].split("-"))


def _conv(filters: int, kernel: int, *, stride: int = 1, dilation: int = 1) -> layers.Conv2D:
    """A bias-free convolution (a normalisation follows); dilated ones run on TensorFlow's own
    dilated kernel (:class:`DilatedConv2D`).
    """
    conv = DilatedConv2D if dilation > 1 else layers.Conv2D
    return conv(filters, kernel, strides=stride, dilation_rate=dilation, padding="same",
                use_bias=False)  # fmt: skip


def _norm() -> layers.BatchNormalization:
    return FusedBatchNormalization(momentum=_BN_MOMENTUM)


def _conv_bn_relu(
    x: keras.KerasTensor, filters: int, *, stride: int = 1, dilation: int = 1
) -> keras.KerasTensor:
    x = _conv(filters, 3, stride=stride, dilation=dilation)(x)
    return layers.ReLU()(_norm()(x))


def _residual_block(
    x: keras.KerasTensor, filters: int, *, stride: int = 1, dilation: int = 1
) -> keras.KerasTensor:
    shortcut = x
    y = _conv_bn_relu(x, filters, stride=stride, dilation=dilation)
    y = _norm()(_conv(filters, 3, dilation=dilation)(y))
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = _norm()(_conv(filters, 1, stride=stride)(shortcut))
    return layers.ReLU()(layers.Add()([y, shortcut]))


def _centre(x: keras.KerasTensor) -> keras.KerasTensor:
    """Keep the central quarter (per side) of a feature map.

    The label belongs to the point at the crop centre; averaging the whole map would let the
    water edges and fields around it outvote it. The kept cells still see the whole crop's
    context through their receptive fields.
    """
    height, width = x.shape[1], x.shape[2]
    keep_h, keep_w = max(2, height // 4), max(2, width // 4)
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    return layers.Cropping2D(((top, height - keep_h - top), (left, width - keep_w - left)))(x)


def _head(x: keras.KerasTensor, dropout: float) -> keras.KerasTensor:
    x = layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    # float32 output under a mixed policy too: the loss and thresholds need full precision.
    return layers.Dense(1, activation="sigmoid", name="dam_probability", dtype="float32")(x)


def residual_cnn(
    bands: Sequence[str],
    crop_size: int,
    width: int = 16,
    dropout: float = 0.2,
    relief: Relief | None = None,
) -> keras.Model:
    """Compact residual CNN: a stem and three residual stages (``width``, 2x, 4x filters), the
    last two halving the resolution, then average pooling over the centre of the feature map
    (where the point is) and a sigmoid.
    """
    inputs = bands_input(bands, crop_size)
    x = _conv_bn_relu(_with_relief(inputs, bands, relief, _CLASSIFIER_RELIEF), width)
    for stage, factor in enumerate((1, 2, 4)):
        x = _residual_block(x, width * factor, stride=1 if stage == 0 else 2)
        x = _residual_block(x, width * factor)
    return keras.Model(inputs, _head(_centre(x), dropout), name="residual_cnn")


def plain_cnn(
    bands: Sequence[str],
    crop_size: int,
    width: int = 16,
    dropout: float = 0.2,
    relief: Relief | None = None,
) -> keras.Model:
    """The seed study's kind of model: conv-BN-ReLU-pool stages without shortcuts."""
    inputs = bands_input(bands, crop_size)
    x = _with_relief(inputs, bands, relief, _CLASSIFIER_RELIEF)
    for factor in (1, 2, 4):
        x = _conv_bn_relu(x, width * factor)
        x = layers.MaxPooling2D()(x)
    return keras.Model(inputs, _head(x, dropout), name="plain_cnn")


def mobilenet_v2(
    bands: Sequence[str],
    crop_size: int,
    width: int = 16,
    dropout: float = 0.2,
    relief: Relief | None = None,
) -> keras.Model:
    """Keras' MobileNetV2 (untrained, ``alpha=0.35``) on any number of bands; crops >= 32 px.

    ``width`` is ignored: the width multiplier is fixed at the smallest published one.
    """
    del width
    inputs = bands_input(bands, crop_size)
    backbone = keras.applications.MobileNetV2(
        input_shape=(crop_size, crop_size, len(bands)), alpha=0.35, include_top=False, weights=None
    )
    x = _with_relief(inputs, bands, relief, _CLASSIFIER_RELIEF)
    return keras.Model(inputs, _head(backbone(x), dropout), name="mobilenet_v2")


CLASSIFIERS: dict[str, Callable[..., keras.Model]] = {
    "residual_cnn": residual_cnn,
    "plain_cnn": plain_cnn,
    "mobilenet_v2": mobilenet_v2,
}


def build_classifier(
    architecture: ClassifierName,
    bands: Sequence[str],
    crop_size: int,
    width: int = 16,
    dropout: float = 0.2,
    relief: Relief | None = None,
) -> keras.Model:
    """Build a patch classifier by name; with ``relief`` the elevation band enters as height
    above its surroundings (:func:`relief_from_settings`), as the FCN's does.

    Raises:
        ValueError: If ``architecture`` is unknown.
    """
    if architecture not in CLASSIFIERS:
        raise ValueError(
            f"unknown classifier architecture {architecture!r}: choose one of {sorted(CLASSIFIERS)}"
        )
    return CLASSIFIERS[architecture](bands, crop_size, width=width, dropout=dropout, relief=relief)


def _fcn_branch(
    x: keras.KerasTensor,
    inputs: keras.KerasTensor,
    width: int,
    dilations: Sequence[int],
    stem_stride: int,
    output_name: str,
) -> keras.KerasTensor:
    """One FCN from its (relief-adjusted) input ``x`` to its ``(H, W, 1)`` heatmap."""
    if stem_stride == 1:
        x = _conv_bn_relu(x, width)
    else:
        x = layers.ReLU()(_norm()(_conv(width, stem_stride, stride=stem_stride)(x)))
    for dilation in dilations:
        x = _residual_block(x, width, dilation=int(dilation))
    if stem_stride == 1:
        x = layers.Conv2D(width, 1, activation="relu")(x)
    else:
        x = layers.Conv2DTranspose(max(8, width // stem_stride), stem_stride,
                                   strides=stem_stride, activation="relu")(x)  # fmt: skip
        x = CropToReference()([x, inputs])
    return layers.Conv2D(1, 1, activation="sigmoid", name=output_name, dtype="float32")(x)


def dilated_fcn(
    bands: Sequence[str],
    width: int = 24,
    dilations: Sequence[int] = (1, 2, 4, 8),
    stem_stride: int = 1,
    relief: Relief | None = None,
    members: int = 1,
) -> keras.Model:
    """Fully convolutional net with dilated residual blocks: ``(H, W, C)`` of any size to an
    ``(H, W, 1)`` sigmoid dam probability at full resolution.

    With ``relief`` (:func:`relief_from_settings`) the elevation band (``AVE``) enters as its
    height above the mean of the ``relief.window``-pixel square around it, times
    ``relief.gain``, pixels whose normalised height is one of ``relief.no_data`` left out
    (:class:`~dam_detection.model_layers.LocalRelief`): the model sees no absolute heights.

    With ``stem_stride`` 1 every layer runs at full resolution (a 3x3 stem). With ``s`` > 1 the
    stem folds each ``s x s`` block of pixels into ``width`` channels (a ``s x s`` convolution of
    stride ``s``: space to depth and a linear map), the blocks run on 1/s^2 of the pixels, and a
    transposed convolution returns each cell to its ``s x s`` pixels. On a CPU a convolution's
    time follows the size of its feature maps more than its arithmetic (narrow layers are
    memory-bound), so ``width`` 32 at half resolution trains about twice as fast as 16 at full
    resolution for the same arithmetic (benchmarks/results_train.md).

    With ``members`` > 1 the model is an ensemble in one graph: that many FCNs of this shape,
    each with its own weights, side by side on the same input, their heatmaps averaged (the
    average is the output, ``dam_probability``; each member's heatmap is ``dam_probability_<i>``).
    Training fits :func:`member_heatmaps`, so each member learns on its own; every consumer of
    the model sees one heatmap, as from a single FCN.

    The receptive field grows with the dilations without pooling; it is in the model name.
    """
    if members < 1:
        raise ValueError(f"an FCN needs at least one member, got members={members}")
    inputs = bands_input(bands, None)
    x = _with_relief(inputs, bands, relief, "train.fcn.elevation_relief")
    if members == 1:
        outputs = _fcn_branch(x, inputs, width, dilations, stem_stride, "dam_probability")
        prefix = "dilated_fcn"
    else:
        heatmaps = [
            _fcn_branch(x, inputs, width, dilations, stem_stride, f"{_MEMBER_PREFIX}{index}")
            for index in range(members)
        ]
        outputs = layers.Average(name="dam_probability", dtype="float32")(heatmaps)
        prefix = f"dilated_fcn_x{members}"
    model = keras.Model(inputs, outputs)
    return keras.Model(inputs, outputs, name=f"{prefix}_rf{receptive_field(model)}px")


def member_heatmaps(model: keras.Model) -> keras.Model:
    """The model that training fits: an FCN ensemble's members' heatmaps side by side, one
    channel each, on the ensemble's own layers (a single FCN is returned as it is).

    Fitting it against a one-channel target with
    :func:`~dam_detection.model_layers.member_crossentropy` trains every member
    on its own loss; the ensemble, which shares the weights, averages what they learnt.
    """
    names = [layer.name for layer in model.layers if layer.name.startswith(_MEMBER_PREFIX)]
    if not names:
        return model
    heatmaps = [model.get_layer(name).output for name in names]
    outputs = layers.Concatenate(name="member_heatmaps", dtype="float32")(heatmaps)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_members")


def fcn_from_settings(
    bands: Sequence[str],
    fcn: Mapping[str, Any],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> keras.Model:
    """The FCN that ``train.fcn`` describes (``width``, ``dilations``, ``stem_stride``,
    ``elevation_relief``, ``members``), untrained.

    Args:
        bands: Band names in channel order.
        fcn: The ``train.fcn`` settings.
        mean: Per-band means of ``stats.json``, in ``bands`` order (:func:`relief_from_settings`).
        std: Per-band standard deviations, likewise.
    """
    relief = relief_from_settings(bands, fcn.get("elevation_relief"), mean, std)
    return dilated_fcn(bands, width=int(fcn["width"]), dilations=fcn["dilations"],
                       stem_stride=int(fcn["stem_stride"]), relief=relief,
                       members=int(fcn["members"]))  # fmt: skip


def receptive_field(model: keras.Model) -> int:
    """Receptive field in pixels of a convolutional model without pooling: along the longest
    path through its graph (in these residual models the chain of convolutions; in an ensemble
    the widest member), with a ``LocalRelief`` in front.

    Each convolution adds ``(k - 1) * d`` times the spacing of its input pixels in model-input
    pixels (the spacing grows by each stride); a transposed convolution divides the spacing by
    its stride and adds ``(k - 1)`` output spacings, because its output pixels lie off the
    centre of the cell they come from. A layer with several inputs (an addition, an average)
    sees as far as the farthest of them.

    Raises:
        ValueError: If a layer pools (the formula would not hold).
    """
    inputs_of = layer_inputs(model)
    reach: dict[str, tuple[float, float]] = {}  # layer name -> (field, spacing) of its output
    for layer in model.layers:  # a functional model lists its layers in graph order
        field, spacing = max((reach[name] for name in inputs_of.get(layer.name, [])
                              if name in reach), default=(1.0, 1.0))  # fmt: skip
        if isinstance(layer, LocalRelief):
            field += (layer.window - 1) * spacing
        elif isinstance(layer, layers.Conv2DTranspose):
            spacing /= layer.strides[0]
            field += (layer.kernel_size[0] - 1) * spacing
        elif isinstance(layer, layers.Conv2D):
            field += (layer.kernel_size[0] - 1) * layer.dilation_rate[0] * spacing
            spacing *= layer.strides[0]
        elif isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D):
            raise ValueError(f"{layer.name} pools: receptive_field needs models without pooling")
        reach[layer.name] = (field, spacing)
    return int(round(max(field for field, _ in reach.values())))


def forward_flops_per_pixel(model: keras.Model) -> float:
    """Multiply-adds x 2 of every convolution in one forward pass, per model-input pixel.

    A layer behind a stride of ``s`` runs on ``1/s^2`` of the pixels; a transposed convolution
    multiplies each of its input cells by its whole kernel.
    """
    total, density = 0.0, 1.0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            height, width, filters_out, filters_in = layer.kernel.shape
            total += 2.0 * height * width * filters_in * filters_out * density
            density *= layer.strides[0] * layer.strides[1]
        elif isinstance(layer, layers.Conv2D):
            density /= layer.strides[0] * layer.strides[1]
            height, width, filters_in, filters_out = layer.kernel.shape
            total += 2.0 * height * width * filters_in * filters_out * density
    return total
