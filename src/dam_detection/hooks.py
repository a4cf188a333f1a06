"""Project hooks: the only place where process-wide side effects are set up."""

from __future__ import annotations

import os

from kedro.framework.hooks import hook_impl


class TelemetryOffHooks:
    """Keep kedro-telemetry quiet even where the project's ``.telemetry`` file is not found."""

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro passes its context
        os.environ.setdefault("DO_NOT_TRACK", "1")


class EarthEngineHooks:
    """Initialise Earth Engine once per run when the configured image source is ``earthengine``.

    The implementation lives with the Earth Engine image source; this hook only calls it so that
    no node ever initialises Earth Engine itself.
    """

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro passes its context
        # The raw parameters, not ``context.params``: that would build every pipeline first.
        source = context.config_loader["parameters"].get("image_source", {}) or {}
        if source.get("kind") != "earthengine":
            return
        from dam_detection.image_sources.earthengine.session import (
            initialize_from_credentials,
            load_credentials,
        )

        # load_credentials also reads conf/local, which `--env earthengine` does not load.
        initialize_from_credentials(load_credentials(context.config_loader), source)
