"""Reading serialized Earth Engine graphs in tests: find invocations, decode constants."""

from __future__ import annotations

import json
from typing import Any

import ee

from dam_detection.image_sources.earthengine.fake_service import table_points


def graph(obj: Any) -> str:
    return json.dumps(ee.serializer.encode(obj, for_cloud_api=True), sort_keys=True)


def invocations(obj: Any, function: str) -> list[dict[str, Any]]:
    """Arguments of every invocation of ``function`` in the serialized graph, each once, with
    arguments that refer to a shared value replaced by that value."""
    found = []
    encoded = ee.serializer.encode(obj, for_cloud_api=True)

    def resolve(argument: Any) -> Any:
        if isinstance(argument, dict):
            if "valueReference" in argument:
                return resolve(encoded["values"][argument["valueReference"]])
            return {key: resolve(value) for key, value in argument.items()}
        if isinstance(argument, list):
            return [resolve(value) for value in argument]
        return argument

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            call = node.get("functionInvocationValue")
            if call and call.get("functionName") == function:
                found.append({k: resolve(v) for k, v in call["arguments"].items()})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(encoded)
    return found


def constant(argument: dict[str, Any]) -> Any:
    """A constant argument as Python data, also when Earth Engine wrapped a number in
    ``Image.constant`` or spelled a list or dictionary element by element."""
    if "constantValue" in argument:
        return argument["constantValue"]
    if "arrayValue" in argument:
        return [constant(value) for value in argument["arrayValue"]["values"]]
    if "dictionaryValue" in argument:
        return {k: constant(v) for k, v in argument["dictionaryValue"]["values"].items()}
    call = argument["functionInvocationValue"]
    assert call["functionName"] == "Image.constant", call
    return constant(call["arguments"]["value"])


def point_features(obj: Any) -> list[dict[str, Any]]:
    """Properties of every point feature built in Python (``ee.Feature(geometry, properties)``),
    in order, as the fake service reads them."""
    return table_points(obj)
