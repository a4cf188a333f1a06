"""Environments override single parameter leaves (soft merge), as the README promises."""

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def test_environment_overrides_one_leaf_and_keeps_its_siblings(kedro_project):
    override = kedro_project / "conf" / "local" / "parameters.yml"
    override.write_text("image_source:\n  simulated:\n    seed: 7\n")
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project, env="local") as session:
        params = session.load_context().params
    assert params["image_source"].simulated.seed == 7  # validated into ImageSourceSettings
    assert params["image_source"].kind == "simulated"  # sibling leaf survives
    assert params["image_source"].simulated.cloud_rate == 0.4
    assert params["bands"] == ["B2", "B3", "B4", "NDWI", "AVE"]
