"""Several camera frames in one fixed-size model input, and the boxes mapped back to each frame.

Exports (OpenVINO, ONNX, TFLite) usually have a static input, e.g. 640x640. A frame letterboxed
into it wastes the bars (a 16:9 frame fills 56 %), and a camera whose objects are near and large
does not need 640 px at all. Each frame is therefore scaled so that its longer side is the
camera's detect size, and frames are packed side by side, shelf by shelf, into as few canvases
as possible: two 16:9 frames at 560 px share one 640x640 input, six at 320 px do. Boxes belong
to the frame that holds their centre and are clipped to it, so an object never leaks into a
neighbour's frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from analytics.detection import Detection

Image = npt.NDArray[np.uint8]
PAD = 114  # the grey ultralytics letterboxes with: the model has learnt it means "nothing here"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one frame went: `canvas` index, its picture's top-left (x0, y0), its scale."""

    canvas: int
    x0: int
    y0: int
    scale: float
    width: int  # the frame's own size
    height: int

    @property
    def right(self) -> int:
        return self.x0 + round(self.width * self.scale)

    @property
    def bottom(self) -> int:
        return self.y0 + round(self.height * self.scale)


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class Packer:
    """First-fit shelf packing, tallest frames first: a frame goes on the first shelf (of any
    canvas) with room left, else on a new shelf in the first canvas with height left, else on a
    new canvas. All frames of a batch are inferred together, so their order costs nobody."""

    def __init__(self, size: int) -> None:
        self.size = size

    def place(self, frames: list[tuple[int, int, int]]) -> list[Placement]:
        """frames: (width, height, detect size) each -> where each goes, in the same order."""
        scaled = [scaled_size(w, h, min(size, self.size)) for w, h, size in frames]
        used_height: list[int] = []  # per canvas
        shelves: list[list[int]] = []  # [canvas, y, height, x filled so far]
        out: dict[int, Placement] = {}
        for index in sorted(range(len(frames)), key=lambda i: -scaled[i][1]):
            w, h = scaled[index]
            shelf = next((s for s in shelves if s[3] + w <= self.size and h <= s[2]), None)
            if shelf is None:
                canvas = next(
                    (c for c, used in enumerate(used_height) if used + h <= self.size), None
                )
                if canvas is None:
                    canvas = len(used_height)
                    used_height.append(0)
                shelf = [canvas, used_height[canvas], h, 0]
                used_height[canvas] += h
                shelves.append(shelf)
            canvas, y, _, x = shelf
            out[index] = Placement(canvas, x, y, w / frames[index][0], *frames[index][:2])
            shelf[3] += w
        return [out[i] for i in range(len(frames))]

    def render(self, images: list[Image], placements: list[Placement], canvas: int) -> Image:
        """The model input `canvas`: the frames placed on it, grey elsewhere."""
        out = np.full((self.size, self.size, 3), PAD, dtype=np.uint8)
        for image, p in zip(images, placements, strict=True):
            if p.canvas != canvas:
                continue
            interpolation = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR
            out[p.y0 : p.bottom, p.x0 : p.right] = cv2.resize(
                image, (p.right - p.x0, p.bottom - p.y0), interpolation=interpolation
            )
        return out


def unpack(
    detections: list[Detection], placements: list[Placement], canvas: int
) -> dict[int, list[Detection]]:
    """One canvas's boxes -> {index of the frame in `placements`: boxes in its own pixels}."""
    here = [(i, p) for i, p in enumerate(placements) if p.canvas == canvas]
    out: dict[int, list[Detection]] = {i: [] for i, _ in here}
    for d in detections:
        cx, cy = (d.x1 + d.x2) / 2.0, (d.y1 + d.y2) / 2.0
        owner = next(
            ((i, p) for i, p in here if p.x0 <= cx < p.right and p.y0 <= cy < p.bottom), None
        )
        if owner is None:
            continue  # centred in the padding: the model saw nothing of a frame there
        index, p = owner
        x1 = min(max((d.x1 - p.x0) / p.scale, 0.0), float(p.width))
        x2 = min(max((d.x2 - p.x0) / p.scale, 0.0), float(p.width))
        y1 = min(max((d.y1 - p.y0) / p.scale, 0.0), float(p.height))
        y2 = min(max((d.y2 - p.y0) / p.scale, 0.0), float(p.height))
        if x2 - x1 >= 1.0 and y2 - y1 >= 1.0:
            out[index].append(replace(d, x1=x1, y1=y1, x2=x2, y2=y2))
    return out
