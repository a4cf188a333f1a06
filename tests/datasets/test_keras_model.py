"""KerasModelDataset: a model with the project's layers loads in a process that never built one.

Keras registers custom layers per process, when their module is imported. The test process has
imported ``dam_detection.model_layers`` already, so each load runs in a fresh interpreter, as
``kedro run --pipeline scan`` does after a separate ``train`` run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dam_detection.datasets.keras_model import KerasModelDataset  # noqa: E402
from dam_detection.model_layers import DilatedConv2D, FusedBatchNormalization  # noqa: E402

_LOAD = """
import sys
import numpy as np
from {module} import {dataset}
model = {dataset}(filepath=sys.argv[1], load_args={{"safe_mode": True}}).load()
print(float(model.predict(np.ones((1, 9, 9, 2), np.float32), verbose=0).sum()))
"""


def _load_in_fresh_process(path: Path, module: str, dataset: str) -> subprocess.CompletedProcess:
    code = _LOAD.format(module=module, dataset=dataset)
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                       "PATH": "/usr/bin:/bin"})  # fmt: skip


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A tiny model with both project layers, saved through the dataset; its output on ones."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 2))
    x = DilatedConv2D(3, 3, dilation_rate=2, padding="same")(inputs)
    x = FusedBatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(x))
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    KerasModelDataset(filepath=str(path)).save(model)
    expected = float(model.predict(np.ones((1, 9, 9, 2), np.float32), verbose=0).sum())
    return path, expected


def test_loads_without_the_layers_imported(saved_model: tuple[Path, float]) -> None:
    path, expected = saved_model
    done = _load_in_fresh_process(path, "dam_detection.datasets", "KerasModelDataset")
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-5)


def test_the_stock_dataset_cannot(saved_model: tuple[Path, float]) -> None:
    """What the dataset exists for: kedro-datasets' own class fails in such a process."""
    path, _ = saved_model
    done = _load_in_fresh_process(path, "kedro_datasets.tensorflow", "TensorFlowModelDataset")
    assert done.returncode != 0
    assert "FusedBatchNormalization" in done.stderr or "DilatedConv2D" in done.stderr
