"""What an Earth Engine error means for the export that met it: retry, split, or stop.

Earth Engine reports failures as free text (a failed task's ``error.message``, an HTTP error's
body). One ordered table maps them to what to do; the first matching row wins, so the specific
rows ("Too many pixels", "Computation timed out") come before the general ones ("too many",
"timed out"), which mean a busy service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    """What to do about a failure."""

    TRANSIENT = "transient"
    """The service was busy or briefly broken: the same request later, with back-off."""
    TOO_BIG = "too_big"
    """The request was too much for one task: split it and submit the parts."""
    PERMANENT = "permanent"
    """The request cannot succeed as it is: stop and say what to change."""
    CANCELLED = "cancelled"
    """A person cancelled the task: report it, never restart it unasked."""


@dataclass(frozen=True)
class FailureRule:
    """One row of the table: a pattern (case-insensitive) and what it means."""

    pattern: str
    kind: FailureKind
    advice: str = ""


#: Ordered: the first rule whose pattern occurs in the message decides.
FAILURE_RULES: tuple[FailureRule, ...] = (
    FailureRule(r"cancel", FailureKind.CANCELLED, "a user cancelled the task"),
    FailureRule(
        r"computation timed out", FailureKind.TOO_BIG, "one task holds too many points or pixels"
    ),
    FailureRule(
        r"user memory limit exceeded", FailureKind.TOO_BIG, "one task needs too much memory"
    ),
    FailureRule(r"output of image computation is too large", FailureKind.TOO_BIG),
    FailureRule(
        r"too many pixels",
        FailureKind.PERMANENT,
        "the export region holds more pixels than allowed: make the scene smaller "
        "(width_px, height_px) or split it into tiles",
    ),
    FailureRule(
        r"(asset|collection|image) .*not found|not found.*asset|does not exist",
        FailureKind.PERMANENT,
        "an asset id in image_source.earthengine is wrong or superseded: check it in the "
        "Earth Engine Data Catalog",
    ),
    FailureRule(
        r"permission|not authorized|access denied|caller does not have|forbidden|\b403\b",
        FailureKind.PERMANENT,
        "the account lacks access: give it Earth Engine access in the Cloud project and "
        "write access to the bucket or Drive folder",
    ),
    FailureRule(
        r"did not match any bands|pattern '.*' did not match",
        FailureKind.PERMANENT,
        "a band is missing from the images: check `bands` and the cloud mask (QA60 is empty "
        "after January 2022: use cloud_mask: cloud_score_plus)",
    ),
    FailureRule(r"too many tasks already in the queue", FailureKind.TRANSIENT),
    FailureRule(r"too many (concurrent|requests|aggregations)", FailureKind.TRANSIENT),
    FailureRule(r"rate limit|quota|resource.?exhausted", FailureKind.TRANSIENT),
    FailureRule(r"backend error|internal error|service unavailable", FailureKind.TRANSIENT),
    FailureRule(r"try again|temporar|deadline|timed out|timeout", FailureKind.TRANSIENT),
    FailureRule(r"connection|\b(429|500|502|503|504)\b", FailureKind.TRANSIENT),
)

_COMPILED = tuple((re.compile(rule.pattern, re.IGNORECASE), rule) for rule in FAILURE_RULES)
#: Anything the table does not know: stop rather than retry blindly.
UNKNOWN = FailureRule("", FailureKind.PERMANENT, "see the message; fix the request and run again")


def classify(error: BaseException | str) -> FailureRule:
    """The rule for an error or a failed task's message.

    Network errors raised by the client (``ConnectionError``, ``TimeoutError``) are transient
    whatever they say.
    """
    if isinstance(error, ConnectionError | TimeoutError):
        return FailureRule("", FailureKind.TRANSIENT)
    message = str(error)
    for pattern, rule in _COMPILED:
        if pattern.search(message):
            return rule
    return UNKNOWN
