"""Kedro project settings.

Parameters merge softly across environments, so ``conf/<env>/parameters_*.yml`` can override a
single leaf (``gee_export.patch.radius``) without restating the rest of its top-level key.
"""

from dam_detection.hooks import EarthEngineHooks, RunSummaryHooks, TelemetryOffHooks

HOOKS = (TelemetryOffHooks(), EarthEngineHooks(), RunSummaryHooks())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
}
