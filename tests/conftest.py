"""Shared fixtures: a throw-away copy of the project, so Kedro runs write to a temporary data/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    """A copy of the project's ``pyproject.toml``, ``.telemetry``, ``conf/`` (without
    ``local/``) and shipped ``data/01_raw`` in a temporary folder, with empty data layers.

    Kedro resolves the catalog's relative paths against the project path, so a session created
    on this folder reads and writes only inside it.
    """
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # Kedro requires it; the package itself is installed
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", project / "data" / "01_raw")
    return project


def run_kedro(
    project: Path,
    pipeline_names: Iterable[str] | None = None,
    *,
    env: str = "test",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run pipelines of ``project`` through a real ``KedroSession``.

    Args:
        project: A folder made by the ``kedro_project`` fixture.
        pipeline_names: Pipelines to run; ``None`` runs ``__default__``.
        env: Kedro environment (``conf/<env>``).
        params: Runtime parameter overrides, as ``kedro run --params``.

    Returns:
        What ``session.run`` returns (free outputs).
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        return session.run(pipeline_names=list(pipeline_names) if pipeline_names else None)


#: Real public data from other projects, read in place (never copied into this repository).
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ``../shared/data``, or skip the test saying why (CI always has the folder)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(
            f"{path} is absent: real samples are read from ../shared/data beside the checkout"
        )
    return path
