"""The Frame that ingest hands to analytics and to the wall's MJPEG tiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    camera_id: str
    seq: int
    captured_mono: float  # time.monotonic() when the decoder returned it: for ages and rates
    captured_at: datetime  # UTC wall clock of the same instant: for incidents and the page
    image: npt.NDArray[np.uint8]  # BGR, HxWx3
    sparse: bool = False  # decoded while the camera was quiet: one frame a GOP

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
