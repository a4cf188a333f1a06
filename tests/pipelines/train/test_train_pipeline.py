"""`kedro run --pipelines train` end to end: outputs, Sacred records (files and a real MongoDB
wire-protocol server), and bit-identical results from two runs with the same seed."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from kedro_datasets.tensorflow import TensorFlowModelDataset

from dam_detection.model_metadata import weights_fingerprint
from dam_detection.pipelines.train.models import model_bands
from dam_detection.pipelines.train.sacred_run import MONGO_TIMEOUT_S, make_observers
from tests.conftest import PROJECT_ROOT, run_kedro
from tests.pipelines.train.synthetic import write_project_inputs


def _project(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    write_project_inputs(project, records={"train": 32, "val": 12, "test": 12})
    return project


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mongo_url(tmp_path_factory):
    """A MongoDB wire-protocol server (nx-27017, SQLite behind it) on a loopback port."""
    folder = tmp_path_factory.mktemp("mongo")
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("nx-27017")),
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
            "--db",
            str(folder / "sacred.db"),
            "--log-file",
            str(folder / "log"),
            "--pid-file",
            str(folder / "pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"mongodb://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mongo_url):
    project = _project(tmp_path_factory.mktemp("run_a"))
    (project / "conf" / "test" / "credentials.yml").write_text(
        f"sacred_mongo:\n  url: {mongo_url}\n  db_name: sacred_test\n"
    )
    (project / "conf" / "test" / "catalog_train.yml").write_text(
        "train_run_folders:\n"
        "  type: dam_detection.pipelines.train.run_folders.RunFoldersDataset\n"
        "  path: data/06_models\n"
        "  credentials: sacred_mongo\n"
    )
    # A run recorded earlier as files only: MongoDB, still empty, would number the next run 1.
    earlier = project / "data" / "06_models" / "sacred" / "1"
    earlier.mkdir(parents=True)
    (earlier / "run.json").write_text('{"status": "COMPLETED"}')
    run_kedro(project, ["train"])
    return project


def _weights(path: Path) -> list[np.ndarray]:
    return (
        TensorFlowModelDataset(filepath=str(path), load_args={"safe_mode": True})
        .load()
        .get_weights()
    )


@pytest.mark.slow
def test_train_writes_models_metrics_and_plots(trained):
    reporting, models = trained / "data" / "08_reporting", trained / "data" / "06_models"
    metrics = json.loads((reporting / "train_metrics.json").read_text())
    assert metrics["bands"] == ["B2", "B3", "B4", "NDWI", "AVE"]
    machine = metrics["machine"]  # results differ by CPU kind: each run says where it ran
    assert machine["cpu"] and isinstance(machine["avx512"], bool) and machine["tensorflow"]
    assert "TF_ENABLE_ONEDNN_OPTS" in machine["onednn"]
    test = metrics["classifier"]["test"]
    assert test["count"] == 12 and sum(test["confusion"].values()) == 12
    assert {"dam", "bridge", "water_edge", "random"} == set(test["by_kind"])
    assert "against_dams" in test["by_kind"]["bridge"]
    assert metrics["fcn"]["receptive_field_px"] == 15 + 4  # dilations [1, 2] and a 5 px relief
    # Where each training's time went: steps, validation, the rest, and cores kept busy.
    timing = metrics["fcn"]["timing"]
    assert timing["epochs"] == metrics["fcn"]["epochs_run"] and timing["train_s"] > 0
    assert timing["validation_s"] > 0 and timing["train_cores_busy"] > 0
    assert metrics["classifier"]["precision"] == metrics["fcn"]["precision"] == "float32"
    assert 0.0 <= metrics["fcn"]["test"]["pr_auc"] <= 1.0
    for name in ("train_curves", "train_roc_pr", "train_confusion", "train_error_gallery"):
        assert (reporting / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    classifier = TensorFlowModelDataset(filepath=str(models / "classifier.keras")).load()
    assert classifier.input_shape == (None, 24, 24, 5) and model_bands(classifier)[0] == "B2"
    # Keras' layer tables go to the run's log file, not the console.
    logs = "".join(p.read_text() for p in (trained / "data/08_reporting/logs").glob("*.log"))
    assert "Total params" in logs
    fcn_metadata = json.loads((models / "fcn.json").read_text())
    assert fcn_metadata["bands"] == ["B2", "B3", "B4", "NDWI", "AVE"]
    assert (fcn_metadata["patch_size_px"], fcn_metadata["receptive_field_px"]) == (33, 19)
    assert json.loads((models / "classifier.json").read_text())["input_size_px"] == 24
    fcn = TensorFlowModelDataset(filepath=str(models / "fcn.keras")).load()
    assert fcn_metadata["weights_sha256"] == weights_fingerprint(fcn.get_weights())
    assert fcn.predict(np.zeros((1, 40, 33, 5), np.float32), verbose=0).shape == (1, 40, 33, 1)


@pytest.mark.slow
def test_sacred_records_both_runs_in_files_and_mongodb(trained, mongo_url):
    import pymongo

    sacred = trained / "data" / "06_models" / "sacred"
    runs = sorted((p for p in sacred.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    assert [run.name for run in runs] == ["1", "2", "3"]  # the earlier run, then both trainings
    for run, model in zip(runs[1:], ("classifier", "fcn"), strict=True):
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "COMPLETED" and record["result"]["pr_auc"] is not None
        artifacts = set(record["artifacts"])
        assert {f"{model}_report.json", f"{model}_roc_pr.png", f"{model}_curves.png"} <= artifacts
        # The catalog's files, added once Kedro saved them (one serialisation of the model).
        assert {f"{model}.keras", f"{model}.json"} <= artifacts
        saved = trained / "data" / "06_models" / f"{model}.keras"
        assert (run / f"{model}.keras").read_bytes() == saved.read_bytes()
        assert json.loads((run / "info.json").read_text())["machine"]["cpu"]
        config = json.loads((run / "config.json").read_text())
        assert config["seed"] == 42 and len(config["inputs"]["files"]) == 6
        logged = json.loads((run / "metrics.json").read_text())
        # Two epochs, validation after the first half (train.callbacks.validate_after): the
        # loss is logged every epoch, the validation loss only where there was one.
        assert logged["loss"]["steps"] == [0, 1] and logged["val_loss"]["steps"] == [1]
        assert "Epoch 2/2" in (run / "cout.txt").read_text()
    database = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)["sacred_test"]
    stored = list(database["runs"].find({}, {"status": 1, "experiment": 1, "config": 1}))
    assert sorted(int(r["_id"]) for r in stored) == [2, 3]  # the ids of the file runs
    assert sorted(r["experiment"]["name"] for r in stored) == [
        "dam_detection.train.classifier",
        "dam_detection.train.fcn",
    ]
    assert all(r["status"] == "COMPLETED" and r["config"]["seed"] == 42 for r in stored)
    artifacts = {
        run["experiment"]["name"]: {a["name"] for a in run.get("artifacts", [])}
        for run in database["runs"].find({}, {"experiment": 1, "artifacts": 1})
    }
    assert "fcn.keras" in artifacts["dam_detection.train.fcn"]
    assert "classifier.keras" in artifacts["dam_detection.train.classifier"]
    assert database["metrics"].count_documents({"name": "val_loss"}) == 2


def test_shards_of_another_size_stop_train_before_any_run_or_checkpoint(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(Exception, match=r"shards are 33 px, patch_radius 8 expects 17"):
        run_kedro(project, ["train"], params={"patch_radius": 8})
    models = project / "data" / "06_models"
    assert not (models / "sacred").exists() and not (models / "checkpoints").exists()


@pytest.mark.slow
def test_unreachable_mongodb_fails_within_seconds_naming_the_credentials():
    url = f"mongodb://127.0.0.1:{_free_port()}"  # a loopback port nothing listens on
    folders = {"sacred": None, "mongo_url": url, "mongo_db": "sacred"}
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"credentials entry.*train_run_folders"):
        make_observers(folders)
    assert time.monotonic() - started < MONGO_TIMEOUT_S + 5


@pytest.mark.slow
def test_same_seed_gives_identical_weights_and_metrics(trained, tmp_path):
    again = _project(tmp_path)
    run_kedro(again, ["train"])
    for name in ("classifier.keras", "fcn.keras"):
        first = _weights(trained / "data" / "06_models" / name)
        second = _weights(again / "data" / "06_models" / name)
        assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    metrics = [
        json.loads((p / "data/08_reporting/train_metrics.json").read_text())
        for p in (trained, again)
    ]
    for run in metrics:  # how long it took is a measurement of the machine, not a result
        for model in ("classifier", "fcn"):
            assert run[model].pop("timing")["train_s"] > 0
    assert metrics[0] == metrics[1]


@pytest.mark.slow
def test_an_fcn_ensemble_trains_its_members_and_saves_one_model(tmp_path):
    project = _project(tmp_path)
    run_kedro(project, ["train"], params={"train": {"fcn": {"members": 2}}})
    models = project / "data" / "06_models"
    fcn = TensorFlowModelDataset(filepath=str(models / "fcn.keras")).load()
    metadata = json.loads((models / "fcn.json").read_text())
    # One model, one heatmap, the field of one member: the scan and segment need nothing new.
    assert fcn.name == "dilated_fcn_x2_rf19px" and metadata["receptive_field_px"] == 19
    image = np.random.default_rng(0).normal(size=(1, 40, 33, 5)).astype(np.float32)
    members = [fcn.get_layer(f"dam_probability_{index}").output for index in (0, 1)]
    heatmaps = np.asarray(keras.Model(fcn.inputs, members)(image))
    assert not np.allclose(heatmaps[0], heatmaps[1])  # two networks, not one twice
    np.testing.assert_allclose(fcn(image), (heatmaps[0] + heatmaps[1]) / 2, atol=1e-6)
    fcn_report = json.loads((project / "data/08_reporting/train_metrics.json").read_text())["fcn"]
    assert fcn_report["parameters"] == fcn.count_params()
    assert 0.0 <= fcn_report["detection"]["threshold"] <= 1.0
