"""Debounce, hysteresis and cooldown: turns a noisy per-frame signal into incident transitions.

idle --(true for `for_s`)--> open --(false for `clear_after_s`)--> closed (cooldown) --> idle
A condition that flickers shorter than `for_s` never opens (dips shorter than `grace_s` inside
the dwell do not restart it); one that dips shorter than `clear_after_s` never closes; after
closing, nothing reopens until `cooldown_s` has passed.
"""

from __future__ import annotations

from enum import StrEnum


class Transition(StrEnum):
    OPENED = "opened"
    HOLDING = "holding"
    CLOSED = "closed"


class Hysteresis:
    """`for_s` of the condition opens, `clear_after_s` without it closes, `cooldown_s` after a
    close nothing reopens. `grace_s`: while the dwell runs, a dip shorter than this does not
    restart it (a detector that misses one person of seven for a frame must not delay a crowd
    incident by a whole dwell time)."""

    def __init__(
        self, for_s: float, clear_after_s: float, cooldown_s: float, grace_s: float = 0.0
    ) -> None:
        self.for_s = for_s
        self.clear_after_s = clear_after_s
        self.cooldown_s = cooldown_s
        self.grace_s = grace_s
        self.is_open = False
        self._true_since: float | None = None
        self._false_since: float | None = None
        self._dip_since: float | None = None
        self._cooldown_until = float("-inf")

    @property
    def pending(self) -> bool:
        """The condition holds and the dwell time is running."""
        return not self.is_open and self._true_since is not None

    def update(self, condition: bool, now: float) -> Transition | None:
        if not self.is_open:
            if now < self._cooldown_until:
                self._true_since = self._dip_since = None
                return None
            if not condition:
                if self._true_since is not None and self.grace_s > 0:
                    if self._dip_since is None:
                        self._dip_since = now
                    if now - self._dip_since < self.grace_s:
                        return None
                self._true_since = self._dip_since = None
                return None
            self._dip_since = None
            if self._true_since is None:
                self._true_since = now
            if now - self._true_since >= self.for_s:
                self.is_open = True
                self._false_since = None
                return Transition.OPENED
            return None
        if condition:
            self._false_since = None
            return Transition.HOLDING
        if self._false_since is None:
            self._false_since = now
        if now - self._false_since >= self.clear_after_s:
            self.is_open = False
            self._true_since = None
            self._cooldown_until = now + self.cooldown_s
            return Transition.CLOSED
        return None

    def resume(self, now: float) -> None:
        """Start open, as if the condition had held until `now` (an observation taken over
        from another box): it closes after `clear_after_s` unless the condition is seen."""
        self.is_open = True
        self._true_since = now
        self._false_since = now
