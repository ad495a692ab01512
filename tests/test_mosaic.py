"""Packing frames of several cameras into one fixed-size model input, and mapping boxes back."""

from __future__ import annotations

import numpy as np

from analytics.detection import Detection
from analytics.mosaic import Packer, unpack


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_frames_fit_without_overlap_and_keep_their_order() -> None:
    packer = Packer(640)
    frames = [(640, 360, 480), (480, 360, 320), (1280, 720, 560), (640, 360, 320), (704, 576, 640)]
    placements = packer.place(frames)
    assert [(p.width, p.height) for p in placements] == [(w, h) for w, h, _ in frames]
    for p, (_, _, size) in zip(placements, frames, strict=True):
        assert 0 <= p.x0 and p.right <= 640 and 0 <= p.y0 and p.bottom <= 640
        assert max(p.right - p.x0, p.bottom - p.y0) == size  # the longer side at detect size
    rects = [(p.canvas, (p.x0, p.y0, p.right, p.bottom)) for p in placements]
    for i, (ca, a) in enumerate(rects):
        for cb, b in rects[i + 1 :]:
            assert ca != cb or not overlaps(a, b)


def test_how_many_frames_share_one_input() -> None:
    packer = Packer(640)
    assert {p.canvas for p in packer.place([(1920, 1080, 320)] * 6)} == {0}  # 6 x 320x180
    assert {p.canvas for p in packer.place([(1280, 720, 560)] * 2)} == {0}  # 2 x 560x315
    assert {p.canvas for p in packer.place([(1280, 720, 640)] * 2)} == {0, 1}  # 640x360 twice
    assert {p.canvas for p in packer.place([(480, 360, 320)] * 4)} == {0}  # 4 x 320x240
    # a frame asked at more than the model holds runs at the model's size
    (big,) = packer.place([(1920, 1080, 1280)])
    assert big.right - big.x0 == 640


def test_boxes_come_back_in_each_frames_own_pixels() -> None:
    packer = Packer(640)
    frames = [(1280, 720, 320), (640, 360, 320)]
    placements = packer.place(frames)
    images = [np.full((h, w, 3), 50 * (i + 1), np.uint8) for i, (w, h, _) in enumerate(frames)]
    canvas = packer.render(images, placements, 0)
    for image, p in zip(images, placements, strict=True):
        assert (canvas[p.y0 : p.bottom, p.x0 : p.right] == image[0, 0]).all()

    def at(p_index: int, x1: float, y1: float, x2: float, y2: float) -> Detection:
        p = placements[p_index]
        return Detection(
            "person", 0, 0.9,
            p.x0 + x1 * p.scale, p.y0 + y1 * p.scale, p.x0 + x2 * p.scale, p.y0 + y2 * p.scale,
        )  # fmt: skip

    spill = at(1, 600, 100, 660, 200)  # runs over frame 1's right edge: clipped to it
    lost = Detection("person", 0, 0.9, 630, 630, 639, 639)  # in the grey: nobody's frame
    out = unpack([at(0, 100, 200, 300, 600), spill, lost], placements, 0)
    (a,) = out[0]
    assert (round(a.x1), round(a.y1), round(a.x2), round(a.y2)) == (100, 200, 300, 600)
    (b,) = out[1]
    assert (round(b.x1), round(b.x2)) == (600, 640)
