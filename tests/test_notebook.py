"""`kedro jupyter notebook` after the documented install (`pip install -e ".[notebook]"`)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")

TOKEN = "dam-detection-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get_json(url: str, deadline: float) -> dict:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def notebook_home(tmp_path: Path) -> dict[str, str]:
    """An environment whose Jupyter folders (kernel specs, runtime) are all in ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    kedro = Path(sys.executable).with_name("kedro")
    return {"HOME": str(home), "PATH": str(kedro.parent), "DO_NOT_TRACK": "1"}


@pytest.mark.slow
def test_kedro_jupyter_notebook_serves_the_project_kernel(kedro_project, notebook_home):
    port = _free_port()
    server = subprocess.Popen(
        ["kedro", "jupyter", "notebook", "--no-browser", "--ip", "127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={TOKEN}", "--allow-root"],
        cwd=kedro_project, env=notebook_home,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        specs = _get_json(
            f"http://127.0.0.1:{port}/api/kernelspecs?token={TOKEN}", time.monotonic() + 60
        )
    finally:
        # `kedro jupyter notebook` runs the server as its child: stop the whole group, or the
        # server outlives the test.
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    # New notebooks open in the project's kernel, which loads the Kedro extension itself.
    assert specs["default"] == "kedro_dam_detection"
    argv = specs["kernelspecs"]["kedro_dam_detection"]["spec"]["argv"]
    assert argv[-2:] == ["--ext", "kedro.ipython"]


@pytest.mark.slow
def test_the_project_kernel_has_the_catalog_and_draws_plots(kedro_project, notebook_home):
    subprocess.run(
        ["kedro", "jupyter", "setup"], cwd=kedro_project, env=notebook_home, check=True,
        capture_output=True, timeout=120,
    )  # fmt: skip
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        # As notebooks/explore_run.ipynb starts; every project module imported before plotting,
        # so one that forced a backend at import would leave the figure blank.
        nbformat.v4.new_code_cell("%load_ext kedro.ipython\n%matplotlib inline"),
        nbformat.v4.new_code_cell(
            "import importlib, pkgutil, dam_detection\n"
            "for module in pkgutil.walk_packages(dam_detection.__path__, 'dam_detection.'):\n"
            "    importlib.import_module(module.name)\n"
            "sorted(name for name in ('points', 'segment_heatmaps', 'train_metrics')"
            " if name in catalog)"
        ),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]);"),
    ]
    environment = {**os.environ, **notebook_home}
    client = nbclient.NotebookClient(
        notebook, kernel_name="kedro_dam_detection", timeout=180,
        resources={"metadata": {"path": str(kedro_project)}},
    )  # fmt: skip
    saved = dict(os.environ)
    os.environ.update(environment)  # the kernel spec is found under this HOME
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    listed = notebook.cells[1].outputs[-1]["data"]["text/plain"]
    assert listed == "['points', 'segment_heatmaps', 'train_metrics']"
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[2].outputs)
