"""A zone in a learned state (banjir, tergenang, ...) by the camera's own trained model, with the
same hysteresis as every rule: it must hold `for` seconds to open, be gone `clear_after`
seconds to close, and then waits `cooldown`. The model is asked at most every
`check_every_s` (a check costs a crop and ~2 ms of features and a dot product)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from analytics.config import StateRule, Zone
from analytics.incidents import Hysteresis, Transition
from analytics.state_model import StateModel


@dataclass(frozen=True)
class StateSignal:
    transition: Transition
    probability: float
    peak: float
    started_at: datetime


class ZoneState:
    def __init__(self, rule: StateRule, zone: Zone, model: StateModel | None) -> None:
        self.rule = rule
        self.zone = zone
        self.use_model(model)
        self.gate = Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s)
        self.probability = 0.0
        self._checked = float("-inf")
        self._peak = 0.0
        self._started_at: datetime | None = None

    def use_model(self, model: StateModel | None) -> None:
        self.model = model if model is not None and self.rule.state in model.states else None

    def resume(self, started_at: datetime, peak: float, now_mono: float) -> None:
        self.gate.resume(now_mono)
        self._started_at, self._peak = started_at, peak / 100

    def update(
        self, image: npt.NDArray[np.uint8], now_mono: float, now_utc: datetime
    ) -> StateSignal | None:
        if self.model is None or now_mono - self._checked < self.rule.check_every_s:
            return None
        self._checked = now_mono
        self.probability = self.model.probabilities(image, self.zone)[self.rule.state]
        was_open = self.gate.is_open
        transition = self.gate.update(self.probability >= self.rule.min_probability, now_mono)
        if transition is None:
            return None
        if transition is Transition.OPENED or not was_open:
            self._peak, self._started_at = 0.0, now_utc
        self._peak = max(self._peak, self.probability)
        assert self._started_at is not None
        return StateSignal(transition, self.probability, self._peak, self._started_at)
