"""Typed parameters: the settings models every pipeline reads, and the whole-tree check.

Every value lives in ``conf/base/parameters*.yml``; the models here say what each key means,
its type and its allowed range, and reject keys they do not know. Kedro validates a node's
``params:`` input against the model its signature names; :func:`check_parameters` validates the
whole merged tree (``conf/base`` + environment + ``--params``) before any pipeline is built.
"""

from dam_detection.parameters.check import ParameterError, check_parameters
from dam_detection.parameters.model import Settings

__all__ = ["ParameterError", "Settings", "check_parameters"]
