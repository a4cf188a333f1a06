"""Typed settings of ``train`` (``conf/base/parameters_train.yml``); see docs/train.md."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dam_detection.parameters.model import Settings


class InputSettings(Settings):
    """``train.input``: the tf.data pipeline."""

    parallel_reads: int = Field(ge=1)
    """Shards open and interleaved at once."""
    shuffle_buffer: int = Field(ge=1)
    """Record-level shuffle buffer (windows, not whole patches)."""
    cache: bool
    """Keep parsed windows in memory after the first epoch (inflating gzip is the bottleneck)."""
    autotune: bool
    """tf.data's autotuning of parallelism and buffers; off, no iterator waits for its tuning
    thread when Keras ends an epoch (:func:`.input_pipeline.stream_options`)."""


class AugmentationSettings(Settings):
    """``train.augmentation``: seeded, in TensorFlow; photometric steps on optical bands only."""

    flips: bool
    """Random horizontal and vertical flips."""
    rotations: bool
    """Random rotations by multiples of 90 degrees."""
    brightness: float = Field(ge=0)
    """Brightness shift, in band standard deviations."""
    contrast: float = Field(ge=0)
    """Contrast change, relative."""
    noise_std: float = Field(ge=0)
    """Gaussian noise, in band standard deviations."""
    masked_edge: float = Field(ge=0, le=1)
    """Share of crops with a masked (0) strip along one side, as past a scene's edge."""
    clouds: float = Field(ge=0, le=1)
    """Share of crops with a synthetic residual cloud (``augmentation.add_clouds``)."""


Schedule = Literal["plateau", "cosine"]


class CallbackSettings(Settings):
    """``train.callbacks``: early stopping and the learning-rate schedules' shared settings."""

    monitor: str
    """Log key to minimise, e.g. ``val_loss``."""
    early_stopping_patience: int = Field(ge=1)
    """Epochs without a better ``monitor`` before training stops."""
    reduce_lr_patience: int = Field(ge=1)
    """``plateau``: epochs without a better ``monitor`` before the rate is reduced."""
    reduce_lr_factor: float = Field(gt=0, lt=1)
    """``plateau``: factor applied to the rate."""
    min_learning_rate: float = Field(gt=0)
    """Lowest learning rate."""
    validate_after: float = Field(ge=0, lt=1)
    """Share of a model's epochs trained before its first validation (0: every epoch). Epochs
    without one count for nothing in early stopping, the plateau schedule or the best epoch."""


class DistributeSettings(Settings):
    """``train.distribute``: where training runs."""

    strategy: Literal["none", "mirrored", "multi_worker"]
    """``none``; ``mirrored`` (all local GPUs); ``multi_worker`` (machines in ``TF_CONFIG``)."""


class ReliefSettings(Settings):
    """``elevation_relief`` of either model: the elevation band as height above its surroundings."""

    window_px: int = Field(ge=1)
    """Odd side of the square whose mean height is subtracted, pixels."""
    unit_m: float = Field(gt=0)
    """Metres of relief that make one unit of the model's input."""

    @field_validator("window_px")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"must be odd (a square centred on its pixel), got {value}")
        return value


class ClassifierSettings(Settings):
    """``train.classifier``: the patch classifier."""

    architecture: Literal["residual_cnn", "plain_cnn", "mobilenet_v2"]
    """Network body."""
    crop_size: int = Field(ge=8)
    """Pixels around the point (never resized); at most the patch size."""
    jitter: int = Field(ge=0)
    """Random shift of the crop centre, pixels."""
    width: int = Field(ge=1)
    """Filters of the first layer."""
    dropout: float = Field(ge=0, lt=1)
    """Dropout before the head."""
    elevation_relief: ReliefSettings | None
    """The elevation band enters as height above the mean of its surroundings, as the FCN's
    does; ``null``: absolute heights."""
    batch_size: int = Field(ge=1)
    """Crops per step."""
    epochs: int = Field(ge=1)
    """Most epochs (early stopping may end sooner)."""
    learning_rate: float = Field(gt=0)
    """Initial Adam learning rate."""
    learning_rate_schedule: Schedule
    """``plateau``: halve after ``callbacks.reduce_lr_patience`` epochs without progress;
    ``cosine``: a cosine from ``learning_rate`` down to ``callbacks.min_learning_rate`` at the
    last epoch."""


class FCNSettings(Settings):
    """``train.fcn``: the dilated fully convolutional network that segments scenes."""

    crop_size: int = Field(ge=8)
    """Training crop side, pixels; at most the patch size."""
    jitter: int = Field(ge=0)
    """Random shift of crops around the point, pixels."""
    width: int = Field(ge=1)
    """Filters per layer."""
    dilations: list[int] = Field(min_length=1)
    """Dilation of each residual block, counted in the blocks' own pixels."""
    stem_stride: int = Field(ge=1, le=4)
    """1: every layer at full resolution (receptive field 3 + 4 * sum of dilations); s: the
    blocks run at 1/s of it, on s x s pixels folded into channels (receptive field
    2s - 1 + 4s * sum), and the head returns to full resolution."""
    elevation_relief: ReliefSettings | None
    """The elevation band enters as height above the mean of its surroundings (the receptive
    field grows by ``window_px - 1``); ``null``: absolute heights."""
    members: int = Field(ge=1)
    """FCNs of this shape trained side by side, each on its own loss, their heatmaps averaged
    (an ensemble saved as one model); each costs one FCN's training and prediction."""
    target_radius: float = Field(gt=0)
    """Pixels around a dam point labelled as dam."""
    ignore_radius: float = Field(ge=0)
    """Ring around it left out of the loss."""
    other_dams_ignore_radius: float = Field(ge=0)
    """Pixels around every other dam the inventories list inside a patch left out of the loss
    (and not counted as false alarms when choosing the detection threshold)."""
    positive_weight: float = Field(gt=0)
    """Loss weight of a dam-disk pixel."""
    anywhere_fraction: float = Field(ge=0, le=1)
    """Share of crops cut anywhere in the patch, not around the point."""
    kind_weights: dict[str, float] | None
    """Loss weight of a patch by its point's kind; kinds not listed weigh 1; ``null``: all 1."""
    batch_size: int = Field(ge=1)
    """Crops per step."""
    epochs: int = Field(ge=1)
    """Most epochs (early stopping may end sooner)."""
    learning_rate: float = Field(gt=0)
    """Initial Adam learning rate."""
    learning_rate_schedule: Schedule
    """``plateau``: halve after ``callbacks.reduce_lr_patience`` epochs without progress;
    ``cosine``: a cosine from ``learning_rate`` down to ``callbacks.min_learning_rate`` at the
    last epoch."""


class TrainSettings(Settings):
    """``train``: both models and how they are trained."""

    bands: list[str] | None
    """Bands the models see, by name; ``null``: the shared ``bands``."""
    input: InputSettings
    """The input pipeline."""
    augmentation: AugmentationSettings
    """Augmentation of training crops."""
    class_balance: Literal["weights", "none"]
    """``weights``: both classes weigh the same in the loss; ``none``."""
    callbacks: CallbackSettings
    """Early stopping and learning rate."""
    distribute: DistributeSettings
    """Distribution strategy."""
    mixed_precision: bool
    """Train in ``mixed_float16`` (float16 compute, float32 weights and outputs) where a GPU is
    present; without one it is ignored with a warning (CPUs gain nothing from it)."""
    verbose: Literal[0, 1, 2]
    """Keras progress: 2 one line per epoch, 1 a progress bar, 0 quiet."""
    classifier: ClassifierSettings
    """The patch classifier."""
    fcn: FCNSettings
    """The fully convolutional network."""
