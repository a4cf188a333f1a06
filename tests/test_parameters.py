"""The parameter tree: every key documented, checked as a whole before any node runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dam_detection.parameters import ParameterError, check_parameters
from dam_detection.parameters.check import _field_model
from dam_detection.parameters.tree import ProjectParameters
from tests.conftest import PROJECT_ROOT, run_kedro
from tests.settings import base_parameters


def _documented_keys(value: Any, model: type[BaseModel], trail: str) -> list[str]:
    """Every key of ``value``, checked against ``model``'s documented fields; free dictionaries
    (``fractions``, ``options``) and lists of models are walked as their field's model."""
    seen = []
    for key, item in value.items():
        path = f"{trail}.{key}" if trail else key
        assert key in model.model_fields, f"{path} is not a field of {model.__name__}"
        field = model.model_fields[key]
        assert field.description, f"{model.__name__}.{key} ({path}) has no documentation"
        seen.append(path)
        inner = _field_model(field.annotation)
        if inner is None:
            continue
        if isinstance(item, dict) and set(item) <= set(inner.model_fields):
            seen += _documented_keys(item, inner, path)
        elif isinstance(item, dict):  # a free dictionary of models, keyed by name
            for name, entry in item.items():
                seen += _documented_keys(entry, inner, f"{path}.{name}")
        elif isinstance(item, list):
            for position, entry in enumerate(item):
                seen += _documented_keys(entry, inner, f"{path}[{position}]")
    return seen


def test_every_key_in_conf_base_is_a_documented_settings_field():
    parameters = base_parameters()
    keys = _documented_keys(parameters, ProjectParameters, "")
    assert {"seed", "patch_radius", "train.fcn.epochs", "detection.tolerance_m"} <= set(keys)
    assert "gee_export.scenes[0].center_lon" in keys
    check_parameters(parameters)  # and the tree as a whole is valid


@pytest.mark.parametrize("env", ["test", "earthengine"])
def test_every_environment_shipped_is_valid(env: str):
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env,
        merge_strategy={"parameters": "soft"},
    )  # fmt: skip
    check_parameters(loader["parameters"])


def test_defaults_live_in_conf_base_only():
    # A field's value comes from the YAML: models carry no defaults but None (optional
    # settings and sub-seeds that fall back to the shared seed) and empty extras.
    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            if not field.is_required():
                default = field.get_default(call_default_factory=True)
                assert default in (None, {}), f"{model.__name__}.{name} defaults to {default!r}"
            inner = _field_model(field.annotation)
            if inner is not None and inner is not model:
                walk(inner)

    walk(ProjectParameters)


def test_unknown_and_mistyped_keys_are_named_with_the_fix():
    parameters = base_parameters()
    parameters["patch_radus"] = 64
    parameters["shard_tfrecords"]["records_per_shrad"] = 10
    parameters["train"]["classifier"]["architecture"] = "vgg"
    with pytest.raises(ParameterError) as raised:
        check_parameters(parameters)
    message = str(raised.value)
    assert "unknown parameter patch_radus: did you mean patch_radius?" in message
    assert "shard_tfrecords.records_per_shrad: did you mean shard_tfrecords.records_per_shard" in (
        message
    )
    assert "train.classifier.architecture is 'vgg'" in message and "'residual_cnn'" in message


def test_a_bad_parameter_stops_a_kedro_run_before_any_node(kedro_project: Path):
    with pytest.raises(ParameterError, match=r"patch_radius is 'big' \(str\).*expected int"):
        run_kedro(kedro_project, ["ingest_points"], params={"patch_radius": "big"})
    assert not (kedro_project / "data" / "03_primary" / "points.parquet").exists()


def test_runtime_sub_seed_falls_back_to_the_shared_seed():
    parameters = base_parameters()
    checked = check_parameters(parameters)
    assert checked.ingest_points.split.seed is None and checked.seed == 42
    parameters["ingest_points"]["split"]["seed"] = 5
    assert check_parameters(parameters).ingest_points.split.seed == 5


@pytest.mark.slow
def test_the_singular_pipeline_option_still_runs_a_pipeline(kedro_project: Path):
    # `kedro run --pipeline NAME` is deprecated in Kedro 1.7 but what many users type.
    from tests.pipelines.ingest_points.test_ingest_pipeline import _write_inputs

    _write_inputs(kedro_project)
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "run", "--pipeline", "ingest_points", "--env", "test",
         "--params", "ingest_points.water_edges.enabled=false"],
        cwd=kedro_project, capture_output=True, text=True, timeout=300,
        env={"DO_NOT_TRACK": "1", "PATH": str(kedro.parent), "HOME": str(kedro_project)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (kedro_project / "data" / "03_primary" / "points.parquet").exists()
    # TensorFlow's C++ start-up notices go to the run's log file, not the console.
    assert "absl::InitializeLog" not in result.stderr + result.stdout
