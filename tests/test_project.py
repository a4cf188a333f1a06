"""The project loads as a Kedro project: settings, registry, soft-merged parameters."""

from pathlib import Path

from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from dam_detection.pipeline_registry import OPTIONAL_PIPELINES, PIPELINE_ORDER

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_default_pipeline_is_the_union_of_all_but_the_optional_pipelines():
    bootstrap_project(PROJECT_ROOT)
    assert set(OPTIONAL_PIPELINES) <= set(pipelines)  # `upload`: run when named
    registered = {
        name: pipe
        for name, pipe in pipelines.items()
        if name != "__default__" and name not in OPTIONAL_PIPELINES
    }
    assert set(registered) == set(PIPELINE_ORDER)
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    assert default_nodes == {node.name for pipe in registered.values() for node in pipe.nodes}


def test_telemetry_consent_is_off():
    assert "consent: false" in (PROJECT_ROOT / ".telemetry").read_text()


def test_shared_parameters_load():
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        params = session.load_context().params
    assert params["bands"] == ["B2", "B3", "B4", "NDWI", "AVE"]
    assert params["image_source"].kind == "simulated"  # validated into its settings model


def test_each_pipeline_is_a_namespace_that_keeps_user_facing_names():
    bootstrap_project(PROJECT_ROOT)
    for name in PIPELINE_ORDER:
        assert {node.namespace for node in pipelines[name].nodes} == {name}
    default = pipelines["__default__"]
    # What users read and write keeps its catalog name across the namespace edge ...
    assert {
        "points", "patches", "scenes", "shards", "fcn_model", "segment_metrics", "point_sources",
        "planet_truth",
    } <= default.all_outputs()  # fmt: skip
    assert {"train_run_folders", "params:seed", "params:train"} <= default.inputs()
    # ... and hand-offs inside a pipeline carry its name.
    assert {"ingest_points.candidates", "train.settings", "segment.score_maps"} <= (
        default.all_outputs()
    )


def test_run_ends_with_the_segment_summary(caplog):
    from kedro.io import MemoryDataset

    from dam_detection.hooks import RunSummaryHooks

    with caplog.at_level("INFO", logger="dam_detection.hooks"):
        RunSummaryHooks().after_pipeline_run(
            run_result={
                "segment_summary": MemoryDataset({"text": "segment: 3 scenes, 9 known dams"})
            }
        )
        RunSummaryHooks().after_pipeline_run(run_result={})  # other pipelines: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "Run summary\nsegment: 3 scenes, 9 known dams"
    ]


def test_the_gpu_extra_pins_the_same_tensorflow():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (cpu,) = [d for d in project["dependencies"] if d.startswith("tensorflow")]
    (gpu,) = project["optional-dependencies"]["gpu"]
    # `pip install -e ".[gpu]"` swaps in CUDA wheels, never another TensorFlow version.
    assert gpu == cpu.replace("tensorflow", "tensorflow[and-cuda]", 1)
