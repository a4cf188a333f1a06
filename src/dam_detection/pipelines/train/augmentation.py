"""Batched, seeded augmentation and targets in TensorFlow (crops, flips, rotations, photometry).

Every function works on a whole batch at once (one graph op per step instead of one per
example) and takes its randomness from a ``seed`` tensor of shape ``[2]`` through TensorFlow's
stateless random ops, so the same seed gives the same batch whatever the parallelism.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

# Offsets added to the batch seed so each random step draws an independent stream.
_CROP, _FLIP, _ROTATE, _BRIGHTNESS, _CONTRAST, _NOISE, _ANYWHERE, _MASK, _CLOUD = range(9)

#: Reflectance of residual cloud in a Sentinel-2 composite: drawn per cloud from this range, the
#: near infrared a little brighter (thick cloud is white, slightly brighter in the NIR).
CLOUD_REFLECTANCE = (0.3, 0.5)
CLOUD_NIR_EXCESS = 0.02
#: Cells across the random field a cloud's outline is cut from: a few per crop, so an edge
#: crosses a 64-pixel crop as a gentle curve, as a kilometre-wide cloud's edge does.
_CLOUD_CELLS = 4


def _seed_for(seed: tf.Tensor, step: int) -> tf.Tensor:
    return tf.stack([seed[0], seed[1] + step])


def crop_batch(images: tf.Tensor, crop_size: int, offsets: tf.Tensor) -> tf.Tensor:
    """Cut a ``crop_size`` square out of each image, centred on the image centre plus an offset.

    Args:
        images: ``(B, S, S, C)`` with the point at the centre pixel ``S // 2``.
        crop_size: Pixels across the crop (at most ``S``).
        offsets: ``(B, 2)`` int32 row/column shifts of the crop relative to the centre.

    Returns:
        ``(B, crop_size, crop_size, C)``: exact pixels, never resampled.
    """
    size = tf.shape(images)[1]
    start = size // 2 - crop_size // 2 + offsets  # (B, 2)
    start = tf.clip_by_value(start, 0, size - crop_size)
    steps = tf.range(crop_size)
    rows = start[:, 0:1] + steps[tf.newaxis, :]
    cols = start[:, 1:2] + steps[tf.newaxis, :]
    images = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def random_offsets(batch: tf.Tensor, jitter: int, seed: tf.Tensor) -> tf.Tensor:
    """``(B, 2)`` uniform integer shifts in ``[-jitter, jitter]`` for :func:`crop_batch`."""
    if jitter <= 0:
        return tf.zeros([batch, 2], tf.int32)
    return tf.random.stateless_uniform(
        [batch, 2], _seed_for(seed, _CROP), minval=-jitter, maxval=jitter + 1, dtype=tf.int32
    )


def anywhere_offsets(
    offsets: tf.Tensor, size: int, crop_size: int, fraction: float, seed: tf.Tensor
) -> tf.Tensor:
    """Replace a ``fraction`` of crop offsets by offsets drawn uniformly over the whole image.

    The new offsets keep the crop inside the ``size``-pixel image, so :func:`crop_batch` never
    clips them and :func:`point_maps` puts the point where it really is (often outside the
    crop: then the crop is all negative).

    Args:
        offsets: ``(B, 2)`` int32 offsets around the point (e.g. :func:`random_offsets`).
        size: Pixels across the images the crops are cut from.
        crop_size: Pixels across a crop.
        fraction: Share of examples whose crop is placed anywhere.
        seed: ``[2]`` batch seed.
    """
    batch = tf.shape(offsets)[0]
    low = -(size // 2 - crop_size // 2)  # crop at the image's top/left edge
    high = size - crop_size + low  # crop at the bottom/right edge
    anywhere = tf.random.stateless_uniform(
        [batch, 2], _seed_for(seed, _ANYWHERE), minval=low, maxval=high + 1, dtype=tf.int32
    )
    chosen = tf.random.stateless_uniform([batch, 1], _seed_for(seed, _ANYWHERE + 100)) < fraction
    return tf.where(chosen, anywhere, offsets)


def mask_edges(images: tf.Tensor, seed: tf.Tensor, rate: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Mask a strip along the left edge of a ``rate`` share of crops (0 in every channel).

    Normalised masked pixels are 0 (``bands.normalize_bands``); scenes have them past their
    edges, where the export's buffer is empty. The strip is 1 to half a crop wide and always on
    the left: the flips and rotations that follow move it to any side.

    Returns:
        The images and the ``(B, H, W, 1)`` float mask (1 where masked).
    """
    batch, width = tf.shape(images)[0], tf.shape(images)[2]
    if rate <= 0:
        return images, tf.zeros_like(images[..., :1])
    draws = tf.random.stateless_uniform([batch, 2], _seed_for(seed, _MASK))
    strip = tf.cast(draws[:, 1] * tf.cast(width // 2, tf.float32), tf.int32) + 1
    strip = tf.where(draws[:, 0] < rate, strip, 0)
    columns = tf.range(width)[tf.newaxis, tf.newaxis, :, tf.newaxis]
    mask = tf.cast(columns < strip[:, tf.newaxis, tf.newaxis, tf.newaxis], images.dtype)
    mask = tf.broadcast_to(mask, tf.concat([tf.shape(images)[:3], [1]], axis=0))
    return images * (1.0 - mask), mask


def add_clouds(
    images: tf.Tensor,
    seed: tf.Tensor,
    rate: float,
    mean: Sequence[float],
    std: Sequence[float],
    reflectance: Sequence[int],
    green: int | None,
    ndwi: int | None,
) -> tf.Tensor:
    """Lay a synthetic cloud over a ``rate`` share of normalised crops.

    A residual cloud's edge across a river ends the water abruptly, which is how a dam's wall
    looks: in one default run's region scan most false alarms lay on cloud edges (off by
    default all the same: on a second planet it made every figure worse; results_scan.md).
    Each chosen crop gets a soft blob (a random field of a few cells, cut at a
    random cover of 20-70% and opacity 0.5-0.95) blended in reflectance towards a cloud's
    (:data:`CLOUD_REFLECTANCE`). NDWI is recomputed from the blended green and near infrared
    (the NIR recovered from NDWI and green), so thin cloud over water lowers NDWI as it does in
    a real composite. Elevation (a surface model sees through cloud) and masked pixels (0 in
    every reflectance channel) are left as they are; labels too: a dam under a cloud is still
    a dam, as in the exports.

    Args:
        images: ``(B, H, W, C)`` normalised crops.
        seed: ``[2]`` int64 batch seed.
        rate: Share of crops with a cloud.
        mean: Per channel mean of the normalisation.
        std: Per channel standard deviation of the normalisation.
        reflectance: Channels that are reflectance bands.
        green: The green band's channel (B3), or ``None``: NDWI is then blended linearly
            towards the cloud's own NDWI.
        ndwi: The NDWI channel, or ``None``.
    """
    if rate <= 0 or not reflectance:
        return images
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    draws = tf.random.stateless_uniform([batch, 4], _seed_for(seed, _CLOUD))
    cells = tf.random.stateless_uniform(
        [batch, _CLOUD_CELLS, _CLOUD_CELLS, 1], _seed_for(seed, _CLOUD + 100)
    )
    field = tf.image.resize(cells, tf.stack([height, width]), method="bicubic")
    cover = 0.2 + 0.5 * draws[:, 1]
    opacity = tf.where(draws[:, 0] < rate, 0.5 + 0.45 * draws[:, 2], 0.0)
    low, high = CLOUD_REFLECTANCE
    bright = low + (high - low) * draws[:, 3]
    shape = [-1, 1, 1, 1]
    alpha = tf.clip_by_value((field - (1.0 - tf.reshape(cover, shape))) / 0.1, 0.0, 1.0)
    masked = tf.reduce_all(tf.gather(images, list(reflectance), axis=-1) == 0.0, axis=-1)
    alpha *= tf.reshape(opacity, shape) * tf.cast(~masked, images.dtype)[..., tf.newaxis]
    cloud = tf.reshape(bright, shape)
    mean_t, std_t = tf.constant(mean, images.dtype), tf.constant(std, images.dtype)
    raw = images * std_t + mean_t
    channels = [images[..., c : c + 1] for c in range(images.shape[-1])]
    for c in reflectance:
        blended = raw[..., c : c + 1] * (1.0 - alpha) + cloud * alpha
        channels[c] = (blended - mean[c]) / std[c]
    if ndwi is not None:
        index = raw[..., ndwi : ndwi + 1]
        if green is not None:
            g = raw[..., green : green + 1]
            nir = g * (1.0 - index) / tf.maximum(1.0 + index, 1e-3)
            g2 = g * (1.0 - alpha) + cloud * alpha
            nir2 = nir * (1.0 - alpha) + (cloud + CLOUD_NIR_EXCESS) * alpha
            blended = (g2 - nir2) / tf.maximum(g2 + nir2, 1e-6)
        else:
            cloud_ndwi = -CLOUD_NIR_EXCESS / (2.0 * cloud + CLOUD_NIR_EXCESS)
            blended = index * (1.0 - alpha) + cloud_ndwi * alpha
        channels[ndwi] = (blended - mean[ndwi]) / std[ndwi]
    return tf.concat(channels, axis=-1)


def point_maps(
    offsets: tf.Tensor,
    crop_size: int,
    labels: tf.Tensor,
    target_radius: float,
    ignore_radius: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-pixel FCN target and loss weight for crops cut with :func:`crop_batch`.

    A dam patch is labelled at one point, not outlined, so the target is a disk of
    ``target_radius`` pixels around the point; the ring out to ``ignore_radius`` is left out of
    the loss because the dam wall and its reservoir run through it with no label to say which
    pixels are wall; beyond it, and everywhere in a non-dam patch, the target is 0.

    Args:
        offsets: ``(B, 2)`` crop shifts; the point sits at ``crop_size // 2 - offset``.
        crop_size: Pixels across the crop.
        labels: ``(B,)`` 1.0 for a dam patch, 0.0 otherwise.
        target_radius: Disk radius in pixels labelled as dam.
        ignore_radius: Radius in pixels inside which non-disk pixels carry no loss.

    Returns:
        ``(target, weight)``, both ``(B, crop_size, crop_size, 1)`` float32.
    """
    centre = tf.cast(crop_size // 2 - offsets, tf.float32)  # (B, 2) point row, column
    grid = tf.cast(tf.range(crop_size), tf.float32)
    d_row = grid[tf.newaxis, :, tf.newaxis] - centre[:, 0, tf.newaxis, tf.newaxis]
    d_col = grid[tf.newaxis, tf.newaxis, :] - centre[:, 1, tf.newaxis, tf.newaxis]
    distance = tf.sqrt(d_row**2 + d_col**2)
    positive = tf.cast(labels, tf.float32)[:, tf.newaxis, tf.newaxis] > 0.5
    in_disk = distance <= target_radius
    target = tf.cast(tf.logical_and(positive, in_disk), tf.float32)
    ignored = tf.logical_and(positive, tf.logical_and(~in_disk, distance <= ignore_radius))
    weight = 1.0 - tf.cast(ignored, tf.float32)
    return target[..., tf.newaxis], weight[..., tf.newaxis]


def other_dams_weight(
    offsets: tf.Tensor, crop_size: int, other_dams: tf.Tensor, radius: float
) -> tf.Tensor:
    """Loss weight 0 within ``radius`` of every other known dam in the crop, 1 elsewhere.

    A patch is labelled at its own point, but inventories list other dams inside it too; a
    crop that holds one must not teach "no dam here". Their listed positions are off their
    walls (inventory errors), so they are left out of the loss rather than made targets.

    Args:
        offsets: ``(B, 2)`` crop shifts, as for :func:`point_maps`.
        crop_size: Pixels across the crop.
        other_dams: ``(B, K, 2)`` row and column offsets of other dams from the patch centre
            (far-away fill where a patch has fewer than K).
        radius: Pixels around each other dam left out of the loss.

    Returns:
        ``(B, crop_size, crop_size, 1)`` float32.
    """
    weight = tf.ones([tf.shape(offsets)[0], crop_size, crop_size, 1], tf.float32)
    ones = tf.ones([tf.shape(offsets)[0]], tf.float32)
    for k in range(other_dams.shape[1]):
        # The other dam sits where a point would after shifting the crop by -its offset.
        shifted = offsets - tf.cast(tf.round(other_dams[:, k, :]), offsets.dtype)
        near, _ = point_maps(shifted, crop_size, ones, radius, radius)
        weight *= 1.0 - near
    return weight


def flip_rotate(images: tf.Tensor, seed: tf.Tensor, flips: bool, rotations: bool) -> tf.Tensor:
    """Random flips and 0/90/180/270 degree rotations of square images, per example.

    The eight orientations (the dihedral group) are the combinations of three independent
    steps: transpose, reverse the rows, reverse the columns. With both options on, each step is
    a fair coin and every orientation of a dam is equally likely; rotations alone draw a
    quarter-turn count ``k`` and map it onto the steps; flips alone reverse the columns.
    """
    if not (flips or rotations):
        return images
    batch = tf.shape(images)[0]
    coins = tf.random.stateless_uniform([3, batch], _seed_for(seed, _FLIP)) < 0.5
    if rotations and not flips:
        turns = tf.random.stateless_uniform(
            [batch], _seed_for(seed, _ROTATE), maxval=4, dtype=tf.int32
        )
        # k quarter turns counter-clockwise = transpose if k is odd, then reverse rows for
        # k in {1, 2} and columns for k in {2, 3}.
        coins = tf.stack([turns % 2 == 1, (turns == 1) | (turns == 2), turns >= 2])
    elif flips and not rotations:
        coins = tf.stack([tf.zeros([batch], tf.bool), tf.zeros([batch], tf.bool), coins[2]])

    def select(coin: tf.Tensor, changed: tf.Tensor, kept: tf.Tensor) -> tf.Tensor:
        return tf.where(coin[:, None, None, None], changed, kept)

    images = select(coins[0], tf.transpose(images, [0, 2, 1, 3]), images)
    images = select(coins[1], tf.reverse(images, axis=[1]), images)
    return select(coins[2], tf.reverse(images, axis=[2]), images)


def photometric(
    images: tf.Tensor,
    seed: tf.Tensor,
    optical: Sequence[bool],
    brightness: float,
    contrast: float,
    noise_std: float,
) -> tf.Tensor:
    """Brightness, contrast and Gaussian noise on the optical channels only.

    Works in normalised units (band standard deviations): ``x * c + b + n`` with ``c`` uniform in
    ``[1 - contrast, 1 + contrast]`` and ``b`` in ``[-brightness, brightness]``, one draw per
    example shared by its optical bands (light changes affect them together); elevation and
    indices such as NDWI are left as they are.
    """
    chosen = [index for index, flag in enumerate(optical) if flag]
    if not chosen or (brightness <= 0 and contrast <= 0 and noise_std <= 0):
        return images
    batch = tf.shape(images)[0]
    light = tf.gather(images, chosen, axis=-1)
    scale = 1.0 + tf.random.stateless_uniform(
        [batch, 1, 1, 1], _seed_for(seed, _CONTRAST), minval=-contrast, maxval=contrast
    )
    shift = tf.random.stateless_uniform(
        [batch, 1, 1, 1], _seed_for(seed, _BRIGHTNESS), minval=-brightness, maxval=brightness
    )
    light = light * scale + shift
    if noise_std > 0:
        # Noise only where it applies: drawing normals is the costliest augmentation step.
        light += tf.random.stateless_normal(
            tf.shape(light), _seed_for(seed, _NOISE), stddev=noise_std
        )
    position = {channel: rank for rank, channel in enumerate(chosen)}
    channels = [
        light[..., position[c] : position[c] + 1] if c in position else images[..., c : c + 1]
        for c in range(len(optical))
    ]
    return tf.concat(channels, axis=-1)


def augment_batch(
    images: tf.Tensor,
    extra: tf.Tensor | None,
    seed: tf.Tensor,
    optical: Sequence[bool],
    settings: Mapping[str, float | bool],
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Geometric augmentation of ``images`` and, identically, of per-pixel ``extra`` maps, then
    photometric augmentation of the images' optical channels.

    Args:
        images: ``(B, H, W, C)`` normalised crops.
        extra: ``(B, H, W, K)`` maps that must move with the pixels (FCN targets), or ``None``.
        seed: ``[2]`` int64 batch seed.
        optical: Per channel, whether it is an optical band.
        settings: ``train.augmentation``: ``flips``, ``rotations``, ``brightness``,
            ``contrast``, ``noise_std``.

    Returns:
        The augmented images and maps.
    """
    channels = images.shape[-1]
    stacked = images if extra is None else tf.concat([images, extra], axis=-1)
    stacked = flip_rotate(stacked, seed, bool(settings["flips"]), bool(settings["rotations"]))
    images, extra = (
        (stacked, None) if extra is None else (stacked[..., :channels], stacked[..., channels:])
    )
    images = photometric(
        images,
        seed,
        optical,
        float(settings["brightness"]),
        float(settings["contrast"]),
        float(settings["noise_std"]),
    )
    return images, extra
