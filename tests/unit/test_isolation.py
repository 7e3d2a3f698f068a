"""The isolated child's progress channel: reports reach the caller, and they extend the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from shared.errors import DocumentFailed
from shared.pipeline.isolation import run_isolated


def _pages(count: int, seconds_each: float, report: Callable[[int, int], None]) -> str:
    report(0, count)
    for page in range(1, count + 1):
        time.sleep(seconds_each)
        report(page, count)
    return "read"


def test_reports_from_the_child_reach_the_caller_in_order() -> None:
    seen: list[tuple[int, int]] = []

    result = run_isolated(
        _pages,
        3,
        0.0,
        memory_limit=2**28,
        timeout=30,
        what="Reading",
        progress=lambda d, t: seen.append((d, t)),
    )

    assert result == "read"
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_the_deadline_grows_with_the_pages_the_child_announces() -> None:
    # 4 pages of 0.5 s: longer than the 1 s base timeout, shorter than 1 s + 4 x 1 s.
    result = run_isolated(
        _pages,
        4,
        0.5,
        memory_limit=2**28,
        timeout=1,
        what="Reading",
        progress=lambda d, t: None,
        seconds_per_unit=1,
    )
    assert result == "read"


def test_without_time_per_page_the_base_deadline_stops_the_child() -> None:
    with pytest.raises(DocumentFailed) as caught:
        run_isolated(
            _pages, 4, 0.5, memory_limit=2**28, timeout=1, what="Reading", progress=lambda d, t: None
        )
    assert caught.value.code == "timeout"
    assert "Reading took longer than 1 s" in caught.value.message
