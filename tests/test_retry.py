"""The one retry loop: bounded attempts, a wait before each but the first, never after the last."""

from __future__ import annotations

from pipeline import retry


def test_attempts_wait_between_attempts_only_and_double_up_to_the_most() -> None:
    waits: list[float] = []
    backoff = retry.Backoff(first=0.5, most=2.0)
    seen = [(a.number, a.last) for a in retry.attempts(5, backoff, sleep=waits.append)]
    assert seen == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    assert waits == [0.5, 1.0, 2.0, 2.0]  # four waits for five attempts, none after the last


def test_an_attempt_that_succeeds_ends_the_waiting() -> None:
    waits: list[float] = []
    for attempt in retry.attempts(10, retry.Backoff(first=1.0, most=8.0), sleep=waits.append):
        if attempt.number == 3:
            break
    assert waits == [1.0, 2.0]
    assert list(retry.attempts(0, retry.Backoff(first=1.0, most=1.0), sleep=waits.append)) == []


def test_jittered_waits_stay_between_the_least_and_the_growing_bound() -> None:
    backoff = retry.Backoff(first=0.001, most=0.05, least=0.0005, jitter=True)
    for n in range(200):
        wait = backoff.delay(n)
        assert 0.0005 <= wait <= min(0.05, 0.001 * 2**n)
    assert len({backoff.delay(10) for _ in range(50)}) > 1  # random: processes do not wake together


def test_an_attempt_told_how_long_to_wait_waits_that_long_once() -> None:
    """HTTP's Retry-After: the wait a server asks for replaces the backoff's, for that wait only."""
    waits: list[float] = []
    for attempt in retry.attempts(4, retry.Backoff(first=0.5, most=8.0), sleep=waits.append):
        if attempt.number == 2:
            attempt.wait(7.0)
    assert waits == [0.5, 7.0, 2.0]
