"""The project loads as a Kedro project: settings, registry, soft-merged parameters."""

import copy
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
    every_node = {node.name for pipe in registered.values() for node in pipe.nodes}
    # The scene export feeds only `segment` (run when named): the default run ends with the scan.
    assert default_nodes == every_node - {"gee_export.export_scenes"}
    assert "scan.segment_tiles_on_dask" in default_nodes


def test_telemetry_consent_is_off():
    assert "consent: false" in (PROJECT_ROOT / ".telemetry").read_text()


def test_shared_parameters_load():
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        params = session.load_context().params
    assert params["bands"] == ["B2", "B3", "B4", "NDWI", "AVE"]
    assert params["image_source"].kind == "simulated"  # validated into its settings model


def test_parameters_validate_whatever_order_the_pipelines_are_named_in():
    # `kedro run --pipelines a,b` validates the named pipelines' typed parameters in an order of
    # its own; a typed parameter nested in another one (`scan.region` in `scan`) failed in one.
    from kedro.validation.parameter_validator import ParameterValidator

    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        raw = session.load_context().config_loader["parameters"]
    for order in (PIPELINE_ORDER, PIPELINE_ORDER[::-1]):
        validator = ParameterValidator({name: pipelines[name] for name in order})
        validated = validator.validate_raw_params(copy.deepcopy(dict(raw)))
        assert validated["scan"].region.name == "mesa"


def test_each_pipeline_is_a_namespace_that_keeps_user_facing_names():
    bootstrap_project(PROJECT_ROOT)
    for name in PIPELINE_ORDER:
        assert {node.namespace for node in pipelines[name].nodes} == {name}
    default = pipelines["__default__"]
    # What users read and write keeps its catalog name across the namespace edge ...
    assert {
        "points", "patches", "shards", "fcn_model", "scan_metrics", "scan_review", "point_sources",
        "planet_truth", "inventory_dams", "inventory_bridges", "scan_region",
    } <= default.all_outputs()  # fmt: skip
    assert {"train_run_folders", "params:seed", "params:train"} <= default.inputs()
    # ... and hand-offs inside a pipeline carry its name.
    assert {"ingest_points.candidates", "train.settings", "scan.scan_run"} <= (
        default.all_outputs()
    )


def test_run_ends_with_the_scan_summary_and_the_review_page(caplog, tmp_path):
    from kedro.io import DataCatalog, MemoryDataset

    from dam_detection.datasets.review_page import ReviewPageDataset
    from dam_detection.hooks import RunSummaryHooks

    hooks = RunSummaryHooks()
    hooks.after_catalog_created(
        DataCatalog({"scan_review": ReviewPageDataset(str(tmp_path / "review"))})
    )
    with caplog.at_level("INFO", logger="dam_detection.hooks"):
        hooks.after_pipeline_run(
            run_result={"scan_summary": MemoryDataset({"text": "scan: 3 candidates"})}
        )
        hooks.after_pipeline_run(run_result={})  # other pipelines: nothing to say
    page = tmp_path.resolve() / "review" / "index.html"
    assert [r.getMessage() for r in caplog.records] == [
        f"Run summary\nscan: 3 candidates\nReview page: {page}"
    ]


def test_the_gpu_extra_pins_the_same_tensorflow():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (cpu,) = [d for d in project["dependencies"] if d.startswith("tensorflow")]
    (gpu,) = project["optional-dependencies"]["gpu"]
    # `pip install -e ".[gpu]"` swaps in CUDA wheels, never another TensorFlow version.
    assert gpu == cpu.replace("tensorflow", "tensorflow[and-cuda]", 1)
