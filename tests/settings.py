"""Settings models filled from ``conf/base`` (the one place defaults live), with overrides."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

from tests.conftest import PROJECT_ROOT

Model = TypeVar("Model", bound=BaseModel)


@cache
def _parameters(env: str) -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env,
        merge_strategy={"parameters": "soft"},
    )
    return dict(loader["parameters"])


def base_parameters(env: str = "base") -> dict[str, Any]:
    """A fresh copy of the merged ``conf/base`` parameters (with ``conf/<env>`` over them)."""
    return copy.deepcopy(_parameters(env))


def _merge(into: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = _merge(dict(into[key]), value)
        else:
            into[key] = value
    return into


def base_settings(model: type[Model], key: str, env: str = "base", **overrides: Any) -> Model:
    """``model`` validated from the ``conf/base`` value at dotted ``key``, leaves overridden.

    Example: ``base_settings(SamplingSettings, "ingest_points.sampling", max_points=10)``;
    ``env="earthengine"`` reads ``conf/earthengine`` over ``conf/base``.
    """
    value: Any = base_parameters(env)
    for part in key.split("."):
        value = value[part]
    return model.model_validate(_merge(dict(value), overrides))


def composite_window(**overrides: Any) -> Any:
    """The shipped ``gee_export.composite`` as the requests' :class:`CompositeWindow`."""
    from dam_detection.pipelines.gee_export.nodes import composite_window as window
    from dam_detection.pipelines.gee_export.settings import CompositeWindowSettings

    return window(base_settings(CompositeWindowSettings, "gee_export.composite", **overrides))


def earthengine_settings(**overrides: Any) -> Any:
    """``image_source.earthengine`` as ``conf/earthengine`` ships it, leaves overridden."""
    from dam_detection.image_sources.settings import EarthEngineSettings

    return base_settings(
        EarthEngineSettings, "image_source.earthengine", env="earthengine", **overrides
    )


def simulated_source(**simulated: Any) -> Any:
    """``image_source`` as shipped, with the planet's small test tiles and no tile cache."""
    from dam_detection.image_sources.settings import ImageSourceSettings

    leaves = {"tile_px": 256, "tile_cache": None, **simulated}
    return base_settings(ImageSourceSettings, "image_source", simulated=leaves)
