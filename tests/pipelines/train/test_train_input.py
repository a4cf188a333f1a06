"""The tf.data input pipeline: normalisation, exact crops, seeded augmentation, block shuffle."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from pydantic import ValidationError

from dam_detection.bands import DEFAULT_BANDS, normalize_bands
from dam_detection.detection.settings import DetectionSettings
from dam_detection.pipelines.train.augmentation import (
    add_clouds,
    anywhere_offsets,
    crop_batch,
    flip_rotate,
    mask_edges,
    point_maps,
)
from dam_detection.pipelines.train.config import check_shards_match, class_weights, resolve_settings
from dam_detection.pipelines.train.eval_input import collect, make_eval_dataset
from dam_detection.pipelines.train.input_pipeline import (
    make_patch_spec,
    make_train_dataset,
    parse_batch,
    point_weight_table,
    read_records,
)
from dam_detection.pipelines.train.settings import TrainSettings
from dam_detection.tfrecord_codec import (
    decode_example,
    encode_example,
    iter_records,
    open_record_stream,
)
from tests.pipelines.train.synthetic import write_synthetic_shards
from tests.settings import base_settings

DETECTION = base_settings(DetectionSettings, "detection")
SETTINGS = resolve_settings(base_settings(TrainSettings, "train"), 7, DEFAULT_BANDS, 128, DETECTION)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    stats, _ = write_synthetic_shards(root, records={"train": 24, "val": 8, "test": 8})
    files = {
        s: [(str(p), "GZIP") for p in sorted((root / s).glob("*.gz"))] for s in ("train", "test")
    }
    return root, stats, files


def _records(path: Path) -> list[dict]:
    with open(path, "rb") as handle:
        return [decode_example(r) for r in iter_records(open_record_stream(handle))]


def test_eval_stream_matches_numpy_normalisation_and_centre_crop(shards):
    root, stats, files = shards
    spec = make_patch_spec(DEFAULT_BANDS, 16, stats)
    batch = collect(
        make_eval_dataset(files["test"][:1], spec, crop_size=9, batch_size=3, autotune=False)
    )
    first = _records(Path(files["test"][0][0]))[0]
    image = np.stack([first[b].reshape(33, 33) for b in DEFAULT_BANDS], axis=-1)
    expected = normalize_bands(image, stats["bands"], DEFAULT_BANDS)[12:21, 12:21]
    np.testing.assert_allclose(batch["image"][0], expected, rtol=1e-5, atol=1e-5)
    assert batch["point_index"][0] == int(first["point_index"][0])
    assert batch["label"][0] == first["label"][0]


def test_masked_pixels_normalise_to_zero_in_train_as_in_segment(shards):
    _, stats, _ = shards
    spec = make_patch_spec(DEFAULT_BANDS, 2, stats)
    image = np.random.default_rng(0).uniform(0.01, 0.3, (5, 5, 5)).astype(np.float32)
    image[:, :2] = 0.0  # past a scene's edge: every band 0
    image[4, 4, :3] = 0.0  # a mask hole: no reflectance, elevation kept
    image[3, 3, 4] = 0.0  # an elevation void alone is not masked
    record = encode_example(
        {band: image[..., i].ravel() for i, band in enumerate(DEFAULT_BANDS)}
        | {"label": np.array([1.0], np.float32), "point_index": np.array([0.0], np.float32)}
    )
    parsed = parse_batch(tf.constant([record]), spec, 5)["image"].numpy()[0]
    expected = normalize_bands(image, stats["bands"], DEFAULT_BANDS)
    np.testing.assert_allclose(parsed, expected, rtol=1e-5, atol=1e-5)
    assert np.all(expected[:, :2] == 0) and np.all(expected[4, 4] == 0)
    assert expected[3, 3, 4] != 0 and expected[2, 2, 0] != 0


def test_anywhere_crops_stay_inside_and_their_targets_follow_the_point():
    size, crop, seed = 33, 8, tf.constant([1, 2], tf.int64)
    offsets = anywhere_offsets(tf.zeros([200, 2], tf.int32), size, crop, 1.0, seed).numpy()
    start = size // 2 - crop // 2 + offsets
    assert start.min() == 0 and start.max() == size - crop  # every position, never clipped
    image = np.zeros((1, size, size, 1), np.float32)
    image[0, size // 2, size // 2] = 1.0  # the point
    for offset in offsets[:40]:
        cut = crop_batch(tf.constant(image), crop, tf.constant([offset]))
        target, _ = point_maps(tf.constant([offset]), crop, tf.constant([1.0]), 0.0, 0.0)
        np.testing.assert_array_equal(cut.numpy(), target.numpy())
    kept = anywhere_offsets(tf.ones([50, 2], tf.int32), size, crop, 0.0, seed).numpy()
    assert np.all(kept == 1)


def test_masked_edges_are_zero_strips_from_the_left():
    images = tf.ones([64, 8, 8, 2])
    masked, mask = mask_edges(images, tf.constant([3, 4], tf.int64), 0.5)
    masked, mask = masked.numpy(), mask.numpy()[..., 0]
    strips = mask.sum(axis=2)[:, 0]  # masked columns per crop
    assert 0 < np.count_nonzero(strips) < 64 and strips.max() <= 4
    np.testing.assert_array_equal(mask, mask[:, :1, :].repeat(8, axis=1))  # whole columns
    assert np.all(masked[mask == 1] == 0) and np.all(masked[mask == 0] == 1)
    unchanged, none = mask_edges(images, tf.constant([3, 4], tf.int64), 0.0)
    assert float(tf.reduce_sum(none)) == 0 and np.all(unchanged.numpy() == 1)


def test_clouds_brighten_reflectance_lower_water_ndwi_and_leave_elevation_and_masks():
    # raw B3, NDWI, AVE of open water at 120 m; one crop in four fully masked (all zeros)
    mean, std = (0.1, 0.0, 500.0), (0.05, 0.4, 100.0)
    raw = np.broadcast_to(np.float32([0.085, 0.55, 620.0]), (32, 24, 24, 3)).copy()
    images = (raw - np.float32(mean)) / np.float32(std)
    images[::4, ..., 0] = 0.0  # masked reflectance: normalised 0
    seed = tf.constant([7, 1], tf.int64)
    out = add_clouds(tf.constant(images), seed, 0.5, mean, std, (0,), 0, 1).numpy()
    back = out * np.float32(std) + np.float32(mean)
    np.testing.assert_array_equal(out[..., 2], images[..., 2])  # elevation sees through cloud
    np.testing.assert_array_equal(out[::4], images[::4])  # masked pixels stay masked
    touched = np.abs(out - images).max(axis=(1, 2, 3)) > 1e-4
    assert 0 < touched.sum() < 32  # about half the crops carry a cloud
    cloudy = np.abs(back[..., 0] - 0.085) > 0.05  # pixels under a fair thickness of cloud
    assert cloudy.any() and (~cloudy[touched]).any()  # clouds have edges inside the crop
    assert back[..., 0][cloudy].min() > 0.085 and back[..., 0].max() <= 0.5  # brighter, <= cloud
    assert back[..., 1][cloudy].max() < 0.3  # water under cloud no longer reads as water
    assert len(np.unique(back[touched][..., 0].max(axis=(1, 2)).round(3))) > 1  # many clouds
    # without the green band NDWI blends linearly towards the cloud's own (slightly negative)
    # NDWI: thick cloud still hides the water, thin cloud less than with the green band
    no_green = add_clouds(tf.constant(images), seed, 0.5, mean, std, (0,), None, 1).numpy()
    ndwi = no_green[..., 1] * std[1] + mean[1]
    thick = back[..., 0] > 0.28
    assert thick.any() and ndwi[thick].max() < 0.3 and ndwi.min() > -0.05
    unchanged = add_clouds(tf.constant(images), seed, 0.0, mean, std, (0,), 0, 1).numpy()
    np.testing.assert_array_equal(unchanged, images)
    again = add_clouds(tf.constant(images), seed, 0.5, mean, std, (0,), 0, 1).numpy()
    np.testing.assert_array_equal(again, out)  # seeded


def test_train_stream_is_seeded_and_reshuffled_every_epoch(shards):
    _, stats, files = shards
    spec = make_patch_spec(["B4", "NDWI"], 16, stats)

    def stream(seed):
        return make_train_dataset(
            files["train"],
            spec,
            target="label",
            crop_size=16,
            jitter=3,
            batch_size=8,
            seed=seed,
            input_settings=SETTINGS["input"],
            augmentation=SETTINGS["augmentation"],
            class_weights=(0.5, 2.0),
        )

    first, again, other = stream(1), stream(1), stream(2)
    epoch_a = [b[0].numpy() for b in first]
    epoch_b = [b[0].numpy() for b in first]  # second epoch of the same dataset
    assert epoch_a[0].shape == (8, 16, 16, 2)
    assert sum(len(b) for b in epoch_a) == 24
    for x, y in zip(epoch_a, [b[0].numpy() for b in again], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(epoch_a[0], epoch_b[0])
    assert not np.array_equal(epoch_a[0], next(iter(other))[0].numpy())
    _, labels, weights = next(iter(first))
    np.testing.assert_array_equal(weights.numpy(), np.where(labels.numpy()[:, 0] > 0.5, 2.0, 0.5))


def test_shard_order_changes_between_epochs(shards):
    _, _, files = shards
    many = files["train"] * 4  # 8 "files" so an order change is near certain
    records = read_records(many, shuffle_seed=3, parallel_reads=1)
    first, second = list(records.as_numpy_iterator()), list(records.as_numpy_iterator())
    assert sorted(first) == sorted(second) and first != second


def test_crop_is_exact_and_flip_rotate_keeps_pixels():
    images = tf.reshape(tf.range(2 * 7 * 7 * 1, dtype=tf.float32), [2, 7, 7, 1])
    crops = crop_batch(images, 3, tf.constant([[0, 0], [1, -2]]))
    np.testing.assert_array_equal(crops[0, ..., 0], images[0, 2:5, 2:5, 0])
    np.testing.assert_array_equal(crops[1, ..., 0], images[1, 3:6, 0:3, 0])
    turned = flip_rotate(images, tf.constant([4, 2], tf.int64), flips=True, rotations=True)
    for original, result in zip(images.numpy(), turned.numpy(), strict=True):
        candidates = [np.rot90(o, k) for o in (original, original[:, ::-1]) for k in range(4)]
        assert any(np.array_equal(result, c) for c in candidates)


def test_photometric_augmentation_touches_optical_bands_only(shards):
    _, stats, files = shards
    spec = make_patch_spec(["B2", "AVE"], 16, stats)
    plain = dict(SETTINGS["augmentation"], flips=False, rotations=False)
    kwargs = dict(
        target="label",
        crop_size=12,
        jitter=0,
        batch_size=24,
        seed=5,
        input_settings=SETTINGS["input"],
        class_weights=(1.0, 1.0),
    )
    augmented = next(iter(make_train_dataset(files["train"], spec, augmentation=plain, **kwargs)))
    none = dict(plain, brightness=0.0, contrast=0.0, noise_std=0.0)
    clean = next(iter(make_train_dataset(files["train"], spec, augmentation=none, **kwargs)))
    np.testing.assert_array_equal(augmented[0][..., 1], clean[0][..., 1])
    assert not np.allclose(augmented[0][..., 0], clean[0][..., 0])


def test_fcn_point_maps_follow_the_crop_offset():
    target, weight = point_maps(
        tf.constant([[0, 0], [2, -1]]), 9, tf.constant([1.0, 0.0]), 1.0, 3.0
    )
    assert target[0, 4, 4, 0] == 1 and target[0, 4, 5, 0] == 1 and target[0, 4, 6, 0] == 0
    assert weight[0, 4, 6, 0] == 0 and weight[0, 0, 0, 0] == 1
    assert float(tf.reduce_sum(target[1])) == 0 and float(tf.reduce_min(weight[1])) == 1
    shifted, _ = point_maps(tf.constant([[2, -1]]), 9, tf.constant([1.0]), 0.0, 0.0)
    assert tuple(np.argwhere(shifted.numpy()[0, ..., 0])[0]) == (2, 5)


def test_settings_validation_and_class_weights():
    with pytest.raises(ValidationError, match="widht"):
        base_settings(TrainSettings, "train", classifier={"widht": 3})
    with pytest.raises(ValidationError, match="architecture"):
        base_settings(TrainSettings, "train", classifier={"architecture": "vgg"})
    reordered = base_settings(TrainSettings, "train", bands=["AVE", "B2"])
    two_views = DETECTION.model_copy(update={"views": 2, "threshold_beta": 1.5})
    settings = resolve_settings(reordered, 1, DEFAULT_BANDS, 128, two_views)
    assert settings["bands"] == ["AVE", "B2"] and settings["seed"] == 1
    assert settings["detection"] == {
        "tolerance_px": 15.0,
        "min_distance_px": 10,
        "smoothing_px": 0.0,
        "views": 2,
        "threshold_beta": 1.5,
    }
    with pytest.raises(ValueError, match="crop_size 64 is larger than the 33 px patches"):
        resolve_settings(base_settings(TrainSettings, "train"), 1, DEFAULT_BANDS, 16, DETECTION)
    assert class_weights([1, 0, 0, 0], "weights") == (pytest.approx(2 / 3), 2.0)
    assert class_weights([1, 0, 0, 0], "none") == (1.0, 1.0)


def test_point_weight_table_weighs_listed_kinds_and_leaves_others_at_one():
    kind_of = {0: "dam", 1: "bridge", 3: "water_edge", 4: "random"}
    table = point_weight_table(kind_of, {"bridge": 3.0, "water_edge": 2.0})
    np.testing.assert_allclose(table, [1.0, 3.0, 1.0, 2.0, 1.0])
    assert point_weight_table(kind_of, None) is None
    with pytest.raises(ValueError, match=">= 0"):
        point_weight_table(kind_of, {"bridge": -1.0})


def test_shards_that_hold_other_bands_or_sizes_are_refused_plainly():
    stats = {"bands": {b: {} for b in DEFAULT_BANDS}, "band_order": list(DEFAULT_BANDS),
             "patch_size_px": 257, "label_key": "label"}  # fmt: skip
    check_shards_match(stats, ["B2", "B3"], 128)  # a subset, the right size: fine
    with pytest.raises(ValueError, match=r"shards are 257 px, patch_radius 64 expects 129"):
        check_shards_match(stats, DEFAULT_BANDS, 64)
    with pytest.raises(ValueError, match=r"missing \['B8'\]"):
        check_shards_match(stats, ["B2", "B8"], 128)


def test_other_listed_dams_in_a_crop_carry_no_loss() -> None:
    import tensorflow as tf

    from dam_detection.pipelines.train.augmentation import other_dams_weight

    offsets = tf.constant([[0, 0], [0, 0]], tf.int32)
    others = tf.constant([[[4.0, -6.0], [1e4, 1e4]], [[1e4, 1e4], [1e4, 1e4]]], tf.float32)
    weight = other_dams_weight(offsets, 33, others, 2.0).numpy()[..., 0]
    assert weight[0, 16 + 4, 16 - 6] == 0.0 and weight[0, 16 + 4, 16 - 6 + 3] == 1.0
    assert (weight[0] == 0).sum() == 13  # a disk of radius 2
    assert weight[1].min() == 1.0  # no other dam: everything counts


@pytest.mark.parametrize("autotune", [False, True])
def test_train_and_eval_streams_follow_the_autotune_setting(shards, autotune):
    """``train.input.autotune`` reaches every stream; input ops stay on one thread each."""
    _, stats, files = shards
    spec = make_patch_spec(DEFAULT_BANDS, 16, stats)
    train = make_train_dataset(
        files["train"], spec, target="label", crop_size=16, jitter=0, batch_size=4, seed=1,
        input_settings={**SETTINGS["input"], "autotune": autotune},
        augmentation=SETTINGS["augmentation"],
    )  # fmt: skip
    evaluation = make_eval_dataset(files["test"], spec, crop_size=9, batch_size=3,
                                   autotune=autotune)  # fmt: skip
    for stream in (train, evaluation):
        assert stream.options().autotune.enabled is autotune
        assert stream.options().threading.max_intra_op_parallelism == 1
    assert SETTINGS["input"]["autotune"] is False  # the default (conf/base)
