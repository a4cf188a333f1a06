"""The wiring of a functional Keras model: which layers feed which.

Read from the model's config (its ``inbound_nodes``), so it works the same on a model just
built and on one loaded from a ``.keras`` file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras


def _producers(arguments: Any) -> Iterator[str]:
    """Names of the layers whose outputs appear in a layer config's call arguments."""
    if isinstance(arguments, dict):
        if arguments.get("class_name") == "__keras_tensor__":
            yield arguments["config"]["keras_history"][0]
            return
        for value in arguments.values():
            yield from _producers(value)
    elif isinstance(arguments, list | tuple):
        for value in arguments:
            yield from _producers(value)


def layer_inputs(model: keras.Model) -> dict[str, list[str]]:
    """Layer name -> the names of the layers whose outputs it takes, in call order."""
    return {
        entry["config"]["name"]: list(_producers(entry.get("inbound_nodes", [])))
        for entry in model.get_config()["layers"]
    }


def layer_consumers(model: keras.Model) -> dict[str, list[str]]:
    """Layer name -> the names of the layers that take its output."""
    consumers: dict[str, list[str]] = {}
    for name, producers in layer_inputs(model).items():
        for producer in producers:
            consumers.setdefault(producer, []).append(name)
    return consumers
