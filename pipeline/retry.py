"""Trying again: the one loop that waits between attempts, for everything factory retries.

A compare-and-swap that lost to another process (`pipeline.git.refs`, the notes-update loop,
retiring a latest good), a lineage push another runner got in before, a registry that answered
5xx or dropped the connection, a GitLab call that timed out: each is tried a bounded number of
times, waiting a little longer before each new attempt, at random between two bounds when many
processes may be waiting for the same thing (so they do not wake together).

    for attempt in retry.attempts(ATTEMPTS, BACKOFF):
        if done():
            return
    raise ...  # every attempt failed

`attempts` waits before every attempt but the first, never after the last.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The waits between attempts: before the n-th retry (n from 0), `first * 2**n` seconds, at
    most `most`; with `jitter`, a random time between `least` and that."""

    first: float
    most: float
    least: float = 0.0
    jitter: bool = False

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0: the second attempt)."""
        longest = min(self.most, self.first * 2 ** min(retry, 62))
        return random.uniform(min(self.least, longest), longest) if self.jitter else longest


@dataclass(slots=True)
class Attempt:
    """One attempt: its number (from 1), how many there are at most, and (when the one that
    failed was told how long to wait, an HTTP Retry-After) the wait before the next."""

    number: int
    of: int
    asked: float | None = None

    @property
    def last(self) -> bool:
        """Whether no attempt comes after this one."""
        return self.number >= self.of

    def wait(self, seconds: float) -> None:
        """Wait `seconds` before the next attempt instead of the backoff's delay."""
        self.asked = seconds


def attempts(
    count: int, backoff: Backoff, *, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Attempt]:
    """`count` attempts, waiting `backoff.delay(n)` before attempt n + 2 (or what the attempt
    before it asked for, `Attempt.wait`)."""
    previous: Attempt | None = None
    for number in range(1, count + 1):
        if previous is not None:
            sleep(previous.asked if previous.asked is not None else backoff.delay(number - 2))
        previous = Attempt(number, count)
        yield previous
