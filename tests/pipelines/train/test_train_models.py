"""Models (shapes, receptive field, safe-mode round trip) and resumable training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dam_detection.model_layers import LocalRelief, member_crossentropy
from dam_detection.pipelines.train.models import (
    Relief,
    build_classifier,
    dilated_fcn,
    fcn_from_settings,
    member_heatmaps,
    model_bands,
    receptive_field,
    relief_from_settings,
)
from dam_detection.pipelines.train.settings import CallbackSettings
from dam_detection.pipelines.train.training import configure_determinism, fit_resumable
from tests.settings import base_settings

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
CALLBACKS = base_settings(
    CallbackSettings,
    "train.callbacks",
    early_stopping_patience=50,
    reduce_lr_patience=50,
    validate_after=0.0,
).model_dump() | {"learning_rate_schedule": "plateau"}


def test_fcn_maps_any_size_and_states_its_receptive_field():
    keras.utils.set_random_seed(0)  # a random init can leave every ReLU at the centre dead
    model = dilated_fcn(BANDS, width=4, dilations=(1, 2, 4))
    assert model.name == "dilated_fcn_rf31px" and receptive_field(model) == 31
    assert model(np.zeros((2, 37, 50, 5), np.float32)).shape == (2, 37, 50, 1)
    image = np.random.default_rng(0).normal(size=(1, 41, 41, 5)).astype(np.float32)
    centre = model(image)[0, 20, 20, 0]
    outside = image.copy()
    outside[0, 20, 20 + 16] += 100.0  # one pixel beyond the 15-pixel half-width
    assert model(outside)[0, 20, 20, 0] == centre
    changed = []
    for step in (100.0, -100.0):  # one sign or the other reaches past a ReLU
        inside = image.copy()
        inside[0, 20, 21] += step
        changed.append(bool(model(inside)[0, 20, 20, 0] != centre))
    assert any(changed)


def test_fcn_with_elevation_relief_widens_its_field_and_ignores_the_land_level():
    keras.utils.set_random_seed(0)
    model = dilated_fcn(BANDS, width=4, dilations=(1, 2, 4), relief=Relief(9, gain=2.0))
    assert receptive_field(model) == 31 + 8 and model.name == "dilated_fcn_rf39px"
    image = np.random.default_rng(0).normal(size=(1, 41, 41, 5)).astype(np.float32)
    higher = image.copy()
    higher[..., BANDS.index("AVE")] += 3.0  # the whole region 3 standard deviations higher
    np.testing.assert_allclose(model(higher), model(image), atol=1e-5)
    with pytest.raises(ValueError, match="elevation_relief to null"):
        dilated_fcn(("B2", "B3", "B4"), width=4, dilations=(1,), relief=Relief(9))


def test_the_settings_give_the_relief_its_units_and_the_void_height():
    fcn = {"width": 4, "dilations": [1], "stem_stride": 1, "members": 1,
           "elevation_relief": {"window_px": 9, "unit_m": 10.0}}  # fmt: skip
    mean, std = (0.1, 0.1, 0.1, 0.0, 800.0), (0.05, 0.05, 0.05, 0.4, 160.0)
    relief = fcn_from_settings(BANDS, fcn, mean, std).layers[1]
    assert isinstance(relief, LocalRelief) and relief.channel == BANDS.index("AVE")
    # normalised heights (metres / 160) to units of 10 m; a void (raw 0) is -800 / 160
    assert relief.window == 9 and relief.gain == 16.0 and relief.no_data == (0.0, -5.0)
    assert fcn_from_settings(BANDS, fcn).layers[1].gain == 1.0  # no statistics: timing only
    plain = fcn_from_settings(BANDS, {**fcn, "elevation_relief": None})
    assert not any(isinstance(layer, LocalRelief) for layer in plain.layers)
    assert receptive_field(plain) == 7


@pytest.mark.parametrize("architecture", ["residual_cnn", "plain_cnn"])
def test_a_classifier_with_elevation_relief_ignores_the_land_level(tmp_path, architecture):
    # The step across a wall is what the relief shows; the land's absolute height never counts.
    mean, std = (0.1, 0.1, 0.1, 0.0, 800.0), (0.05, 0.05, 0.05, 0.4, 160.0)
    relief = relief_from_settings(BANDS, {"window_px": 9, "unit_m": 10.0}, mean, std)
    keras.utils.set_random_seed(0)
    model = build_classifier(architecture, BANDS, 32, width=4, dropout=0.0, relief=relief)
    image = np.random.default_rng(0).normal(size=(1, 32, 32, 5)).astype(np.float32)
    higher = image.copy()
    higher[..., BANDS.index("AVE")] += 3.0  # the whole crop 480 m higher
    np.testing.assert_allclose(model(higher), model(image), atol=1e-5)
    steeper = image.copy()
    steeper[:, :16, :, BANDS.index("AVE")] += 3.0  # a 480 m step across the crop: seen
    assert not np.allclose(model(steeper), model(image), atol=1e-5)
    model.save(tmp_path / "m.keras")  # the relief layer loads in safe mode with the model
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(image), model(image), rtol=1e-5)
    with pytest.raises(ValueError, match="train.classifier.elevation_relief to null"):
        build_classifier(architecture, BANDS[:3], 32, relief=relief)


def test_every_classifier_takes_the_relief_and_none_without_it():
    relief = relief_from_settings(BANDS, {"window_px": 9, "unit_m": 10.0})
    for architecture in ("residual_cnn", "plain_cnn", "mobilenet_v2"):
        with_relief = build_classifier(architecture, BANDS, 32, width=4, relief=relief)
        plain = build_classifier(architecture, BANDS, 32, width=4)
        assert sum(isinstance(layer, LocalRelief) for layer in with_relief.layers) == 1
        assert not any(isinstance(layer, LocalRelief) for layer in plain.layers)


def test_strided_fcn_keeps_odd_sizes_and_its_stated_field(tmp_path):
    keras.utils.set_random_seed(0)
    model = dilated_fcn(BANDS, width=8, dilations=(1, 2), stem_stride=2)
    # 2s - 1 + 4s * sum(dilations) = 3 + 8 * 3
    assert model.name == "dilated_fcn_rf27px" and receptive_field(model) == 27
    assert model(np.zeros((1, 33, 50, 5), np.float32)).shape == (1, 33, 50, 1)
    image = np.random.default_rng(1).normal(size=(1, 61, 61, 5)).astype(np.float32)
    for centre in (30, 31):  # both phases of the 2 x 2 cells
        score = model(image)[0, centre, centre, 0]
        outside = image.copy()
        for offset in (14, -14):  # one pixel beyond the 13-pixel half-width, on either side
            outside[0, centre + offset, centre] += 100.0
            outside[0, centre, centre + offset] += 100.0
        assert model(outside)[0, centre, centre, 0] == score
    # Saved and loaded in safe mode, through its own layer, it computes the same.
    model.save(tmp_path / "fcn.keras")
    loaded = keras.models.load_model(tmp_path / "fcn.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(image), model(image), rtol=1e-6)


def test_an_fcn_ensemble_is_one_model_averaging_members_that_learn_apart(tmp_path):
    from dam_detection.pipelines.segment.inference import fold_batch_norm

    keras.utils.set_random_seed(0)
    ensemble = dilated_fcn(BANDS, width=4, dilations=(1, 2), relief=Relief(5), members=3)
    # The members stand side by side: the field is one member's, not their sum.
    assert ensemble.name == "dilated_fcn_x3_rf19px" and receptive_field(ensemble) == 19
    assert model_bands(ensemble) == BANDS
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 33, 33, 5)).astype(np.float32)
    members = member_heatmaps(ensemble)
    assert members.output.shape[-1] == 3 and ensemble.output.shape[-1] == 1
    heatmaps = np.asarray(members(image))
    np.testing.assert_allclose(ensemble(image), heatmaps.mean(-1, keepdims=True), atol=1e-7)
    assert np.abs(heatmaps[..., 0] - heatmaps[..., 1]).max() > 1e-3  # their own weights
    # Fitting the members' view trains the ensemble's own weights, each member on its loss.
    target = (rng.random((2, 33, 33, 1)) < 0.1).astype(np.float32)
    members.compile(optimizer=keras.optimizers.Adam(0.01), loss=member_crossentropy)
    before = [w.copy() for w in ensemble.get_weights()]
    members.fit(image, target, epochs=2, verbose=0)
    moved = [not np.array_equal(a, b) for a, b in zip(before, ensemble.get_weights(), strict=True)]
    assert all(moved[: len(moved) // 3]) and any(moved[-len(moved) // 3 :])
    # Saved, loaded in safe mode and folded for inference, it computes the same.
    ensemble.save(tmp_path / "fcn.keras")
    loaded = keras.models.load_model(tmp_path / "fcn.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(image), ensemble(image), rtol=1e-6)
    np.testing.assert_allclose(fold_batch_norm(loaded)(image), ensemble(image), atol=1e-5)
    with pytest.raises(ValueError, match="at least one member"):
        dilated_fcn(BANDS, width=4, dilations=(1,), members=0)


def test_the_members_loss_is_each_members_own_cross_entropy_averaged():
    rng = np.random.default_rng(0)
    target = (rng.random((2, 8, 8, 1)) < 0.3).astype(np.float32)
    heatmaps = rng.uniform(0.01, 0.99, size=(2, 8, 8, 2)).astype(np.float32)
    each = [keras.losses.binary_crossentropy(target, heatmaps[..., i : i + 1]) for i in (0, 1)]
    np.testing.assert_allclose(member_crossentropy(target, heatmaps), (each[0] + each[1]) / 2,
                               rtol=1e-6)  # fmt: skip
    # One member: exactly Keras' own loss, so a single FCN trains as it always did.
    np.testing.assert_array_equal(member_crossentropy(target, heatmaps[..., :1]), each[0])


@pytest.mark.parametrize("architecture", ["residual_cnn", "plain_cnn"])
def test_classifiers_adapt_to_bands_and_load_in_safe_mode(tmp_path, architecture):
    model = build_classifier(architecture, BANDS[:3], 24, width=4)
    assert model.output.shape == (None, 1) and model_bands(model) == BANDS[:3]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    batch = np.ones((1, 24, 24, 3), np.float32)
    np.testing.assert_allclose(loaded(batch), model(batch), rtol=1e-6)
    with pytest.raises(ValueError, match="choose one of"):
        build_classifier("vgg", BANDS, 24)


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt


def _tiny():
    configure_determinism(3)
    model = build_classifier("plain_cnn", BANDS[:1], 8, width=2)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.float32)[:, None]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    return model, data


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_last_epoch(tmp_path):
    model, data = _tiny()
    kwargs = dict(epochs=4, checkpoint_dir=tmp_path, callback_settings=CALLBACKS, verbose=0)
    with pytest.raises(Interrupt):
        fit_resumable(model, data, data, extra_callbacks=[InterruptAt(1)], **kwargs)
    assert (tmp_path / "backup").exists() and (tmp_path / "best.weights.h5").exists()
    model, data = _tiny()
    resumed = fit_resumable(model, data, data, **kwargs)
    assert resumed["resumed_from"] == 2
    assert resumed["epochs_run"] == 4 and len(resumed["history"]["val_loss"]) == 4
    assert not (tmp_path / "backup").exists()
    best = int(np.argmin(resumed["history"]["val_loss"]))
    assert resumed["best_epoch"] == best
    assert model.evaluate(data, verbose=0) == pytest.approx(resumed["best"], rel=1e-5)
    model, data = _tiny()
    fresh = fit_resumable(model, data, data, **kwargs)  # no backup left: starts over

    assert fresh["resumed_from"] == 0 and fresh["epochs_run"] == 4


def test_strategies_and_auto_sharding_policy():
    from dam_detection.pipelines.train.training import make_strategy, shard_options

    policy = tf.data.experimental.AutoShardPolicy
    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync >= 1
    assert shard_options(4, mirrored).experimental_distribute.auto_shard_policy == policy.FILE
    with mirrored.scope():
        model = build_classifier("plain_cnn", BANDS[:2], 8, width=2)
    assert model.output.shape == (None, 1)
    with pytest.raises(ValueError, match="mirrored"):
        make_strategy("horovod")


@pytest.mark.parametrize(
    ("tf_config", "chief"),
    [
        (None, True),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}', True),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}', False),
        ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker"}}', False),
    ],
)
def test_only_the_chief_records(monkeypatch, tf_config, chief):
    from dam_detection.pipelines.train.training import is_chief

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert is_chief() is chief


def test_cosine_schedule_runs_from_the_initial_to_the_minimum_rate():
    from dam_detection.pipelines.train.training import cosine_learning_rate

    rates = [cosine_learning_rate(epoch, 5, 0.002, 1e-5) for epoch in range(7)]
    assert rates[0] == pytest.approx(0.002) and rates[4] == pytest.approx(1e-5)
    assert rates[2] == pytest.approx((0.002 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates[:4], rates[1:5], strict=True))
    assert rates[5] == rates[6] == rates[4]  # epochs past the schedule stay at the minimum
    assert cosine_learning_rate(0, 1, 0.002, 1e-5) == 0.002


def test_cosine_schedule_sets_the_optimizer_rate_every_epoch(tmp_path):
    model, data = _tiny()
    settings = {**CALLBACKS, "learning_rate_schedule": "cosine", "min_learning_rate": 1e-4}
    fitted = fit_resumable(
        model, data, data, epochs=3, checkpoint_dir=tmp_path, callback_settings=settings, verbose=0
    )
    # Adam(0.01) on a cosine over 3 epochs: 0.01, the midpoint, the minimum.
    np.testing.assert_allclose(
        fitted["history"]["learning_rate"], [0.01, (0.01 + 1e-4) / 2, 1e-4], rtol=1e-5
    )
    with pytest.raises(ValueError, match="plateau or cosine"):
        fit_resumable(
            model, data, data, epochs=1, checkpoint_dir=tmp_path / "x", verbose=0,
            callback_settings={**CALLBACKS, "learning_rate_schedule": "step"},
        )  # fmt: skip


def test_validation_starts_after_its_share_of_the_epochs_and_changes_no_weight(tmp_path, recwarn):
    from dam_detection.pipelines.train.training import validation_epochs

    assert validation_epochs(35, 0.5) == list(range(18, 36))  # the default FCN
    assert validation_epochs(15, 0.5) == list(range(8, 16))  # the default classifier
    assert validation_epochs(4, 0.0) == [1, 2, 3, 4]
    assert validation_epochs(1, 0.9) == [1]  # the last epoch always validates
    with pytest.raises(ValueError, match="validate_after"):
        validation_epochs(4, 1.0)
    runs = {}
    for share in (0.0, 0.5):
        model, data = _tiny()
        settings = {**CALLBACKS, "learning_rate_schedule": "cosine", "validate_after": share}
        runs[share] = fit_resumable(
            model, data, data, epochs=4, checkpoint_dir=tmp_path / str(share),
            callback_settings=settings, verbose=0,
        )  # fmt: skip
    every, later = runs[0.0]["history"], runs[0.5]["history"]
    # One entry per epoch in every series, None before the first validation.
    assert later["val_loss"][:2] == [None, None] and len(later["loss"]) == 4
    # Validating ranks epochs and changes nothing else: the same losses, bit for bit.
    assert later["loss"] == every["loss"] and later["val_loss"][2:] == every["val_loss"][2:]
    assert runs[0.5]["best_epoch"] == 2 + int(np.argmin(later["val_loss"][2:]))
    # Early stopping counts validations, not epochs: with a patience of 1 and validation from
    # epoch 4 of 6, epochs 1-3 (no val_loss) must not stop the training.
    model, data = _tiny()
    impatient = {**CALLBACKS, "learning_rate_schedule": "cosine", "validate_after": 0.5,
                 "early_stopping_patience": 1}  # fmt: skip
    stopped = fit_resumable(
        model, data, data, epochs=6, checkpoint_dir=tmp_path / "impatient",
        callback_settings=impatient, verbose=0,
    )  # fmt: skip
    assert stopped["epochs_run"] >= 5 and stopped["history"]["val_loss"][:3] == [None] * 3
    assert not [w for w in recwarn if "conditioned on metric" in str(w.message)]


def test_epoch_times_show_a_stalled_epoch_that_totals_hide() -> None:
    """The training report's timing: totals, cores busy, and the spread of the epochs after
    the first (which also fills the input cache), where a stall stands out."""
    from dam_detection.pipelines.train.training import EpochTimes

    times = EpochTimes()
    for train_s, busy in [(20.0, 1.5), (5.0, 1.8), (4.0, 1.8), (9.0, 1.0), (4.5, 1.8)]:
        times.epochs.append({"train_s": train_s, "validation_s": 1.0, "other_s": 0.1,
                             "train_cpu_per_wall": busy})  # fmt: skip
    summary = times.summary()
    assert summary["train_s"] == 42.5 and summary["validation_s"] == 5.0
    assert summary["epochs"] == 5
    assert summary["epoch_train_s_median"] == 5.0  # of 4.0, 4.5, 5.0, 9.0: the upper middle
    assert summary["epoch_train_s_max"] == 9.0  # the stall, not the first epoch's 20 s
    expected_busy = (20 * 1.5 + 5 * 1.8 + 4 * 1.8 + 9 * 1.0 + 4.5 * 1.8) / 42.5
    assert summary["train_cores_busy"] == round(expected_busy, 2)
    assert EpochTimes().summary() == {}
