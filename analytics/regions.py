"""Detect only where things move: a frame's motion regions become a few crops for the
detector, and what the crops find is merged with what stands still elsewhere.

The crops keep the scale the whole frame would have in the model (the camera's detect size
over the frame's longer side), so an object is as many model pixels in a crop as it would be
in the full frame: the detector sees it as before, only without the still parts of the
picture around it. Each crop is padded (a walker's blob is smaller than the walker), at least
MIN_MODEL_PX in the model on each side (context for the model's first layers), and crops that
touch or overlap are merged. Where the crops would cover most of the frame, the frame goes
whole (packing crops would cost more than it saves).

Between full frames (every `full_frame_s`, and every keep-alive of a still scene), objects
outside the crops are carried over from the last frame: a standing crowd and stopped traffic
stay counted and tracked while someone walks past them.

Whether crops find what full frames find depends on the scene: on confident detections (people
on a plaza) they do; where the model is unsure (small, blurred cars at dusk), an object's
confidence hangs on its context and crops miss what the whole frame finds. So each camera
checks it on its own pictures (`RegionTrust`): on the periodic full frames the crops of that
same frame are detected too, and crops are used only while they agree with the full frame
(>= 90 % found again, both ways, over the last checks). Where they do not, the camera detects
whole frames and keeps checking, so it returns to crops when its scene allows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from analytics.detection import Detection
from analytics.motion import Box

MIN_MODEL_PX = 96  # a crop's side in model pixels, at least
PAD = 0.25  # of the blob's size, each side
PAD_MODEL_PX = 16  # and at least this much, in model pixels
MAX_SHARE = 0.6  # crops covering more of the frame than this: the frame goes whole


@dataclass(frozen=True, slots=True)
class Crop:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def overlaps(self, other: Crop) -> bool:
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )

    def union(self, other: Crop) -> Crop:
        return Crop(min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1))  # fmt: skip

    def covers(self, d: Detection, share: float = 0.5) -> bool:
        """Is at least `share` of the box inside this crop?"""
        w = max(0.0, min(self.x1, d.x2) - max(self.x0, d.x1))
        h = max(0.0, min(self.y1, d.y2) - max(self.y0, d.y1))
        area = (d.x2 - d.x1) * (d.y2 - d.y1)
        return area > 0 and w * h / area >= share


def plan(
    regions: list[Box], width: int, height: int, detect_size: int,
    objects: list[Detection] | None = None,
) -> list[Crop] | None:  # fmt: skip
    """The crops for a frame's motion regions; None: detect the whole frame. A crop grows to
    hold every object of the last frame it touches (`objects`): a walker whose moving legs
    made the blob is cropped whole, not cut at the knees."""
    if not regions:
        return None
    scale = detect_size / max(width, height)  # model pixels per frame pixel
    least = min(MIN_MODEL_PX / scale, width, height)
    crops: list[Crop] = []
    for x0, y0, x1, y1 in regions:
        bx0, by0, bx1, by1 = x0 * width, y0 * height, x1 * width, y1 * height
        pad_x = max((bx1 - bx0) * PAD, PAD_MODEL_PX / scale)
        pad_y = max((by1 - by0) * PAD, PAD_MODEL_PX / scale)
        bx0, bx1, by0, by1 = bx0 - pad_x, bx1 + pad_x, by0 - pad_y, by1 + pad_y
        crops.append(_fit(bx0, by0, bx1, by1, least, width, height))
    merged = _merge(crops)
    for _ in range(3):  # growing to an object may make a crop touch the next one
        grown = [_hold(c, objects or [], width, height) for c in merged]
        if grown == merged:
            break
        merged = _merge(grown)
    if sum(c.area for c in merged) > MAX_SHARE * width * height:
        return None
    return merged


def _fit(x0: float, y0: float, x1: float, y1: float, least: float, width: int,
         height: int) -> Crop:  # fmt: skip
    """At least `least` on each side (grown about its centre), inside the frame."""

    def side(a: float, b: float, limit: int) -> tuple[int, int]:
        if b - a < least:
            mid = (a + b) / 2
            a, b = mid - least / 2, mid + least / 2
        if a < 0:
            a, b = 0, b - a
        if b > limit:
            a, b = a - (b - limit), limit
        return max(0, int(a)), min(limit, round(b))

    cx0, cx1 = side(x0, x1, width)
    cy0, cy1 = side(y0, y1, height)
    return Crop(cx0, cy0, cx1, cy1)


def _hold(crop: Crop, objects: list[Detection], width: int, height: int) -> Crop:
    for d in objects:
        box = Crop(max(0, int(d.x1)), max(0, int(d.y1)),
                   min(width, round(d.x2) + 1), min(height, round(d.y2) + 1))  # fmt: skip
        if crop.overlaps(box):
            crop = crop.union(box)
    return crop


def _merge(crops: list[Crop]) -> list[Crop]:
    out = list(crops)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if out[i].overlaps(out[j]):
                    out[i] = out[i].union(out.pop(j))
                    changed = True
                    break
            if changed:
                break
    return out


def shift(found: list[Detection], crop: Crop) -> list[Detection]:
    """A crop's detections in the frame's pixels."""
    return [replace(d, x1=d.x1 + crop.x0, y1=d.y1 + crop.y0, x2=d.x2 + crop.x0,
                    y2=d.y2 + crop.y0) for d in found]  # fmt: skip


def merge(found: list[Detection], crops: list[Crop], before: list[Detection]) -> list[Detection]:
    """What the crops found, and what was seen last frame outside them (still there)."""
    kept = [d for d in before if not any(c.covers(d) for c in crops)]
    return found + [Detection(d.label, d.class_id, d.confidence, d.x1, d.y1, d.x2, d.y2)
                    for d in kept]  # fmt: skip


def found_again(ref: list[Detection], got: list[Detection], iou: float = 0.5) -> int:
    """How many of `ref` have their own box in `got` (IoU >= `iou`, each box used once; the
    most confident of `ref` matched first): one-to-one, so two boxes on one object count once."""
    free = list(got)
    n = 0
    for r in sorted(ref, key=lambda d: -d.confidence):
        best = max(free, key=r.iou, default=None)
        if best is not None and r.iou(best) >= iou:
            free.remove(best)
            n += 1
    return n


class RegionTrust:
    """Do crops find what the whole frame finds, on this camera? Each check is one frame
    detected both ways; crops are trusted while, over the last `window` checks, at least `bar`
    of the full frame's objects were found by the crops and `bar` of the crops' objects were
    in the full frame. Until `least` checks are in, crops are not trusted."""

    def __init__(self, window: int = 10, least: int = 3, bar: float = 0.9) -> None:
        self._checks: deque[tuple[int, int, int, int]] = deque(maxlen=window)
        self._least = least
        self._bar = bar
        self.trusted = False

    def record(self, full: list[Detection], crops: list[Detection]) -> bool | None:
        """One check; returns the new trust when it changed, else None."""
        self._checks.append((found_again(full, crops), len(full), found_again(crops, full),
                             len(crops)))  # fmt: skip
        before = self.trusted
        recall, precision = self.agreement
        self.trusted = len(self._checks) >= self._least and min(recall, precision) >= self._bar
        return self.trusted if self.trusted != before else None

    @property
    def agreement(self) -> tuple[float, float]:
        """(share of the full frames' objects the crops found, share of the crops' objects
        the full frames had) over the window; 1.0 where there was nothing to find."""
        found, total, kept, ours = (sum(c[i] for c in self._checks) for i in range(4))
        return (found / total if total else 1.0, kept / ours if ours else 1.0)

    @property
    def checks(self) -> int:
        return len(self._checks)
