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
def _base_parameters() -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        merge_strategy={"parameters": "soft"},
    )
    return dict(loader["parameters"])


def base_parameters() -> dict[str, Any]:
    """A fresh copy of the merged ``conf/base`` parameters."""
    return copy.deepcopy(_base_parameters())


def _merge(into: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = _merge(dict(into[key]), value)
        else:
            into[key] = value
    return into


def base_settings(model: type[Model], key: str, **overrides: Any) -> Model:
    """``model`` validated from the ``conf/base`` value at dotted ``key``, leaves overridden.

    Example: ``base_settings(SamplingSettings, "ingest_points.sampling", max_points=10)``.
    """
    value: Any = base_parameters()
    for part in key.split("."):
        value = value[part]
    return model.model_validate(_merge(dict(value), overrides))
