"""The base class of every settings model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """A frozen group of parameters that rejects unknown keys.

    Fields carry no defaults: their values live in ``conf/base`` (one source of truth), and the
    docstring under each field is its documentation (pydantic reads it as the description).
    The only defaults are ``None`` for optional settings, such as sub-seeds that fall back to
    the shared ``seed``.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )


def seed_or(own: int | None, shared: int) -> int:
    """A sub-seed: its own value where set, else the shared ``seed``."""
    return int(shared if own is None else own)
