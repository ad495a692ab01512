"""Per-camera object tracking: ultralytics' ByteTrack on the shared detector's output.

The detector is shared and batched across cameras, so `model.track()` (one tracker inside one
predictor) does not fit; each camera gets its own BYTETracker fed with that camera's
detections. On top of the tracker ids we keep what the rules need: age, speed in px/s of the
bottom-centre, and whether the object is stationary.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
from ultralytics.trackers.byte_tracker import BYTETracker

from analytics.detection import Detection

SPEED_WINDOW_S = 2.0
# Stationary when the anchor moves less than this share of the box height per second: scale-free,
# so a far-away parked car and a close one are judged alike.
STATIONARY_HEIGHTS_PER_S = 0.15
# BYTETracker keeps its last 1000 removed tracks (each with its Kalman state, ~2 KB), yet reads
# them only to drop the tracks it removed on the frame before from its lost pool. On a busy
# camera 1000 take half an hour to fill, which reads as a leak in a soak; a track removed
# again by a later frame is simply removed again.
REMOVED_KEPT = 64


class _Boxes:
    """The minimal Results-like view BYTETracker reads: xywh, conf, cls, boolean indexing."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xywh, self.conf, self.cls = xywh, conf, cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> _Boxes:
        return _Boxes(self.xywh[index], self.conf[index], self.cls[index])


@dataclass
class TrackInfo:
    track_id: int
    label: str
    first_seen: float
    last_seen: float
    path: deque[tuple[float, float, float, float]] = field(
        default_factory=lambda: deque(maxlen=64)
    )  # (t, x, y, box height)

    @property
    def age_s(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def speed_px_s(self) -> float:
        recent = [p for p in self.path if self.last_seen - p[0] <= SPEED_WINDOW_S]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        (t0, x0, y0, _), (t1, x1, y1, _) = recent[0], recent[-1]
        return float(np.hypot(x1 - x0, y1 - y0) / (t1 - t0))

    @property
    def stationary(self) -> bool:
        if self.age_s < 1.0:
            return False  # too young to tell
        height = max(self.path[-1][3], 1.0)
        return self.speed_px_s < STATIONARY_HEIGHTS_PER_S * height


class CameraTracker:
    def __init__(self, detect_fps: float, lost_after_s: float = 3.0) -> None:
        args = SimpleNamespace(
            track_high_thresh=0.25, track_low_thresh=0.1, new_track_thresh=0.25,
            track_buffer=max(1, round(lost_after_s * detect_fps)), match_thresh=0.8,
            fuse_score=True,
        )  # fmt: skip
        self._tracker = BYTETracker(args)
        self._lost_after_s = lost_after_s
        self.tracks: dict[int, TrackInfo] = {}

    def update(self, detections: list[Detection], now: float) -> list[Detection]:
        """The same detections with track ids (untracked ones keep None)."""
        if detections:
            xyxy = np.array([[d.x1, d.y1, d.x2, d.y2] for d in detections], dtype=np.float32)
            xywh = np.column_stack(
                ((xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                 xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
            )  # fmt: skip
            conf = np.array([d.confidence for d in detections], dtype=np.float32)
            cls = np.array([d.class_id for d in detections], dtype=np.float32)
        else:
            xywh = np.zeros((0, 4), dtype=np.float32)
            conf = cls = np.zeros((0,), dtype=np.float32)
        rows = self._tracker.update(_Boxes(xywh, conf, cls))
        del self._tracker.removed_stracks[:-REMOVED_KEPT]
        out = list(detections)
        for row in rows:
            track_id, index = int(row[4]), int(row[7])
            det = replace(detections[index], track_id=track_id)
            out[index] = det
            info = self.tracks.get(track_id)
            if info is None:
                info = self.tracks[track_id] = TrackInfo(track_id, det.label, now, now)
            info.last_seen = now
            x, y = det.anchor
            info.path.append((now, x, y, det.y2 - det.y1))
        for track_id in [
            t for t, i in self.tracks.items() if now - i.last_seen > self._lost_after_s
        ]:
            del self.tracks[track_id]
        return out
