"""Hysteresis with a fake clock: dwell before opening, clear_after before closing, cooldown."""

from __future__ import annotations

from analytics.incidents import Hysteresis, Transition


def run(h: Hysteresis, samples: list[tuple[float, bool]]) -> list[tuple[float, Transition]]:
    return [
        (t, tr)
        for t, c in samples
        if (tr := h.update(c, t)) is not None and tr is not Transition.HOLDING
    ]


def test_opens_only_after_dwell() -> None:
    h = Hysteresis(for_s=3, clear_after_s=5, cooldown_s=0)
    flicker = [(0, True), (1, True), (2, False), (3, True), (4, True), (5, True), (6, True)]
    assert run(h, flicker) == [(6, Transition.OPENED)]


def test_a_dip_shorter_than_the_grace_does_not_restart_the_dwell() -> None:
    h = Hysteresis(for_s=3, clear_after_s=5, cooldown_s=0, grace_s=1.0)
    blink = [(0, True), (1, True), (1.2, False), (1.4, True), (2, True), (3, True)]
    assert run(h, blink) == [(3, Transition.OPENED)]  # the 0.2 s miss is ignored
    h = Hysteresis(for_s=3, clear_after_s=5, cooldown_s=0, grace_s=1.0)
    gap = [(0, True), (1, False), (1.5, False), (2, False), (2.5, True), (5, True), (5.5, True)]
    assert run(h, gap) == [(5.5, Transition.OPENED)]  # a 1.5 s gap restarts it
    h = Hysteresis(for_s=3, clear_after_s=5, cooldown_s=0, grace_s=1.0)
    assert run(h, [(0, True), (2.9, False), (3.1, False)]) == []  # never opens on a dip


def test_short_dips_do_not_close() -> None:
    h = Hysteresis(for_s=0, clear_after_s=5, cooldown_s=0)
    samples = [(0, True), (1, False), (3, False), (4, True), (5, False), (9, False), (10, False)]
    assert run(h, samples) == [(0, Transition.OPENED), (10, Transition.CLOSED)]


def test_cooldown_blocks_reopening() -> None:
    h = Hysteresis(for_s=0, clear_after_s=0, cooldown_s=30)
    samples = [(0, True), (1, False), (2, True), (20, True), (31, True)]
    assert run(h, samples) == [
        (0, Transition.OPENED),
        (1, Transition.CLOSED),
        (31, Transition.OPENED),
    ]


def test_holding_while_open() -> None:
    h = Hysteresis(for_s=0, clear_after_s=5, cooldown_s=0)
    assert h.update(True, 0) is Transition.OPENED
    assert h.update(True, 1) is Transition.HOLDING
    assert h.update(False, 2) is None and h.is_open
