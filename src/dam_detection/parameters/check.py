"""Check the whole parameter tree at start-up, with errors a user can act on.

Kedro validates only the ``params:`` inputs that nodes name; a key no node reads (a misspelt
``patch_radus``) would be silently accepted. :func:`check_parameters` validates the merged tree
against :class:`~dam_detection.parameters.tree.ProjectParameters` and turns pydantic's errors
into one message per problem: an unknown key with the nearest known key, a missing key with the
file it belongs in, a wrong type with the expected type.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


class ParameterError(ValueError):
    """The parameters do not match the settings models; the message lists every problem."""


def check_parameters(parameters: Mapping[str, Any]) -> Any:
    """Validate the merged parameter tree.

    Args:
        parameters: What Kedro's config loader gives for ``parameters`` (runtime overrides
            included).

    Returns:
        The validated :class:`~dam_detection.parameters.tree.ProjectParameters`.

    Raises:
        ParameterError: Naming every unknown, missing or mistyped parameter.
    """
    from dam_detection.parameters.tree import ProjectParameters

    try:
        return ProjectParameters.model_validate(dict(parameters))
    except ValidationError as error:
        problems = [describe_problem(ProjectParameters, item) for item in error.errors()]
        raise ParameterError(
            "invalid parameters (conf/<env>/parameters*.yml or --params):\n"
            + "\n".join(f"- {problem}" for problem in problems)
        ) from None


def describe_problem(root: type[BaseModel], item: Mapping[str, Any]) -> str:
    """One pydantic error as a sentence naming the parameter and the fix."""
    location = [part for part in item["loc"] if not _is_union_tag(part)]
    path = _dotted(location)
    kind = item["type"]
    if kind == "extra_forbidden":
        known = _known_keys(root, location[:-1])
        close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {_dotted([*location[:-1], close[0]])}?" if close else ""
        return f"unknown parameter {path}: {hint or 'known here: ' + ', '.join(sorted(known))}"
    if kind == "missing":
        return f"missing parameter {path}: set it in conf/base (see docs/architecture.md)"
    expected = _expected_type(root, location)
    got = item.get("input")
    return f"parameter {path} is {got!r} ({type(got).__name__}): {item['msg'].lower()}" + (
        f"; expected {expected}" if expected else ""
    )


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the member type's name (``int``, ``function-after[...]``) into the
    # location of an error inside a union; those are not keys.
    return isinstance(part, str) and ("[" in part or part in {"int", "float", "str", "bool"})


def _dotted(location: Sequence[Any]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model inside an annotation (``Model``, ``Model | None``, ``dict[str, Model]``,
    ``list[Model]``), if any.
    """
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _field_model(argument)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], location: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in location:
        if model is None:
            return None
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index or a free dictionary key: same model below
        model = _field_model(model.model_fields[part].annotation)
    return model


def _known_keys(root: type[BaseModel], location: Sequence[Any]) -> list[str]:
    model = _model_at(root, location)
    return list(model.model_fields) if model is not None else []


def _expected_type(root: type[BaseModel], location: Sequence[Any]) -> str | None:
    keys = [part for part in location if isinstance(part, str)]
    if not keys:
        return None
    model = _model_at(root, location[:-1]) if isinstance(location[-1], str) else None
    if model is None or keys[-1] not in model.model_fields:
        return None
    annotation = model.model_fields[keys[-1]].annotation
    return _type_name(annotation)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(value) for value in typing.get_args(annotation))
    if isinstance(annotation, type) and origin is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
