"""Kedro project settings.

Parameters merge softly across environments, so ``conf/<env>/parameters_*.yml`` can override a
single leaf (``gee_export.patch.radius``) without restating the rest of its top-level key.
"""

import os

# TensorFlow's C++ start-up notices (CUDA probing, CPU feature hints) are noise in a run's log;
# set before anything imports TensorFlow. Errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dam_detection.hooks import (  # noqa: E402
    EarthEngineHooks,
    ParameterCheckHooks,
    RunLogFileHooks,
    RunSummaryHooks,
    RunTimingHooks,
    SacredArtifactHooks,
    TelemetryOffHooks,
)

# Kedro calls hooks of one spec in reverse registration order (pluggy's LIFO): the parameter
# check is registered last so that it runs before Earth Engine is initialised.
HOOKS = (
    TelemetryOffHooks(),
    RunLogFileHooks(),
    RunSummaryHooks(),  # after RunTimingHooks: its summary is the last thing a run logs
    RunTimingHooks(),
    SacredArtifactHooks(),
    EarthEngineHooks(),
    ParameterCheckHooks(),
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
}
