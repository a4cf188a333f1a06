"""Progress lines: plain, periodic, with an ETA."""

from __future__ import annotations

import logging

from dam_detection.progress import Progress, format_seconds


def test_progress_lines_say_how_far_and_how_long(caplog, monkeypatch):
    clock = iter([0.0, 5.0, 12.0, 30.0, 61.0])
    monkeypatch.setattr("dam_detection.progress.time.monotonic", lambda: next(clock))
    logger = logging.getLogger("test.progress")
    with caplog.at_level("INFO", logger="test.progress"):
        progress = Progress(logger, "scene ozarks", 4, "patches", interval_s=10.0)  # t=0
        progress.update()  # t=5: too soon, no line
        progress.update()  # t=12: a line, half done in 12 s: 12 s to go
        progress.update()  # t=30: a line
        progress.update()  # t=61: the last unit always gets a line
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "scene ozarks: 2/4 patches (50%), 12 s elapsed, ETA 12 s"
    assert lines[-1] == "scene ozarks: 4/4 patches (100%), 1 min 01 s elapsed, done"
    assert len(lines) == 3


def test_seconds_read_as_minutes_and_hours():
    assert format_seconds(42) == "42 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"
