"""The failure table, message by message: what each Earth Engine error makes the queue do."""

from __future__ import annotations

import pytest

from dam_detection.image_sources.earthengine.failures import FailureKind, classify

TRANSIENT, TOO_BIG, PERMANENT, CANCELLED = FailureKind


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        # Busy or briefly broken: the same request later.
        (
            "Too many tasks already in the queue (3000). Please wait for some to complete.",
            TRANSIENT,
        ),
        ("Too many concurrent aggregations.", TRANSIENT),
        ("Too Many Requests: request rate limit exceeded.", TRANSIENT),
        ("Quota exceeded for quota metric 'Requests' of service earthengine.", TRANSIENT),
        ("<HttpError 429 when requesting ... returned RESOURCE_EXHAUSTED>", TRANSIENT),
        ("<HttpError 503 when requesting ... returned Service Unavailable>", TRANSIENT),
        ("Internal error.", TRANSIENT),
        ("An internal error has occurred (backend error); try again.", TRANSIENT),
        ("Deadline exceeded while waiting for the response.", TRANSIENT),
        # Too much for one task: split it.
        ("Computation timed out.", TOO_BIG),
        ("User memory limit exceeded.", TOO_BIG),
        ("Output of image computation is too large (25 bands for 20000 pixels).", TOO_BIG),
        # Cannot succeed as asked: stop and say what to change.
        ("Too many pixels in the region. Specified: 1200000000, maximum allowed: 1e8.", PERMANENT),
        ("Image.load: Image asset 'JAXA/ALOS/AW3D30/V9' not found (does not exist).", PERMANENT),
        ("Collection.loadTable: Collection asset 'users/x/dams' not found.", PERMANENT),
        ("Permission denied: the caller does not have permission.", PERMANENT),
        ("Image.select: Pattern 'QA60' did not match any bands.", PERMANENT),
        ("Collection query aborted after accumulating over 5000 elements.", PERMANENT),
        # A person's decision.
        ("Cancelled.", CANCELLED),
        ("Task was cancelled by the user.", CANCELLED),
    ],
)
def test_each_message_has_its_kind(message, kind):
    assert classify(message).kind is kind


def test_too_many_alone_does_not_decide():
    # Today's "too many" matched both a full queue and an oversized region.
    assert classify("Too many tasks already in the queue").kind is TRANSIENT
    assert classify("Too many pixels in the region").kind is PERMANENT


def test_network_errors_are_transient_and_permanent_ones_say_the_fix():
    assert classify(ConnectionError("reset by peer")).kind is TRANSIENT
    assert classify(TimeoutError()).kind is TRANSIENT
    assert "cloud_score_plus" in classify("Pattern 'QA60' did not match any bands").advice
    assert "smaller" in classify("Too many pixels in the region").advice
    assert classify("something nobody documented").kind is PERMANENT
