"""A fixed-input OpenVINO YOLO export run directly: a uint8 BGR picture in, boxes out.

Through ultralytics' `predict`, every model run also pays for its letterbox, a float tensor
built in torch, NMS in torch and a Results object per image, all in Python under the GIL that
the cameras' own work needs too. Here the conversion to the model's float RGB input runs
inside the compiled graph (OpenVINO's preprocessing), and the boxes are decoded with
ultralytics' own rule (best class per box over the confidence, class-aware NMS at IoU 0.7, at
most 300) in numpy. Measured in bench/results/analytics.json ("raw"); the output is checked
against ultralytics' on real frames in tests/test_detector.py.
"""

from __future__ import annotations

import contextlib
import queue
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from analytics.mosaic import PAD

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float, float, int]  # x1, y1, x2, y2, confidence, class
IOU = 0.7  # ultralytics' default for predict
MAX_DET = 300
MAX_WH = 7680  # ultralytics' per-class offset that keeps NMS within a class


def openvino_export(model_ref: str) -> Path | None:
    """The .xml of an OpenVINO export named by `model_ref` (its folder or the file), or None."""
    path = Path(model_ref).expanduser()
    if path.is_file() and path.suffix == ".xml":
        return path
    if path.is_dir():
        found = sorted(path.glob("*.xml"))
        return found[0] if found else None
    return None


class OpenVinoRunner:
    def __init__(self, xml: Path, device: str = "CPU") -> None:
        import openvino as ov  # heavy import: only where a model is really needed
        from openvino.preprocess import ColorFormat, PrePostProcessor

        meta = yaml.safe_load((xml.parent / "metadata.yaml").read_text()) or {}
        self.names = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        core = ov.Core()
        model = core.read_model(str(xml))
        shape = model.inputs[0].get_partial_shape()
        if shape.is_dynamic or shape[0].get_length() != 1:
            raise ValueError(f"{xml}: not a batch-1 fixed-size export")
        self.height, self.width = shape[2].get_length(), shape[3].get_length()
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(
            ov.Layout("NHWC")
        ).set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(
            ColorFormat.RGB
        ).scale(255.0)
        # Parallel streams, one thread each, not one model run spread over every core: on the
        # 2-core box two streams ran 51-57 inferences/s where one two-thread stream ran 36
        # (its threads wait for each other at every layer, and spin while they wait).
        self._compiled = core.compile_model(ppp.build(), device, {"PERFORMANCE_HINT": "THROUGHPUT"})
        self.streams = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        # Each caller takes free requests, so two batches (from two threads) run side by side
        # as well as the images of one batch.
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.streams):
            self._free.put(self._compiled.create_infer_request())

    def detect(self, images: list[Image], conf: float) -> list[list[Box]]:
        """Each image's boxes (x1, y1, x2, y2, confidence, class) in its own pixels, the
        images run in parallel; an image of another size than the input is letterboxed as
        ultralytics does (scaled to fit, centred, grey). Safe from several threads at once."""
        fits = [self._letterbox(image) for image in images]
        raws: list[npt.NDArray[np.float32] | None] = [None] * len(fits)
        mine: deque[tuple[int, Any]] = deque()  # (image index, request) in flight

        def finish_oldest() -> Any:
            done, request = mine[0]
            request.wait()  # (if it fails, `mine` still holds it: handed back below)
            raws[done] = request.get_output_tensor(0).data[0].copy()
            return mine.popleft()[1]

        try:
            for index, (canvas, _, _, _) in enumerate(fits):
                try:
                    request = self._free.get_nowait()
                except queue.Empty:
                    # Reuse our own oldest: waiting for another caller's could deadlock.
                    request = finish_oldest() if mine else self._free.get()
                try:
                    request.start_async({0: canvas[None]})
                except Exception:
                    self._free.put(request)
                    raise
                mine.append((index, request))
            while mine:
                self._free.put(finish_oldest())
        finally:
            for _, request in mine:  # an error: hand back what we hold, finished
                with contextlib.suppress(Exception):  # the first error is the one to raise
                    request.wait()
                self._free.put(request)
        nc = len(self.names) or None
        out: list[list[Box]] = []
        for index, (image, (_, gain, left, top)) in enumerate(zip(images, fits, strict=True)):
            raw = raws[index]
            assert raw is not None
            rows = decode(raw, conf, nc or raw.shape[0] - 4)
            if gain != 1.0 or left or top:
                h, w = image.shape[:2]
                rows[:, [0, 2]] = ((rows[:, [0, 2]] - left) / gain).clip(0, w)
                rows[:, [1, 3]] = ((rows[:, [1, 3]] - top) / gain).clip(0, h)
            out.append([(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                         int(r[5])) for r in rows])  # fmt: skip
        return out

    def _letterbox(self, image: Image) -> tuple[Image, float, int, int]:
        h, w = image.shape[:2]
        if (h, w) == (self.height, self.width):
            return np.ascontiguousarray(image), 1.0, 0, 0
        gain = min(self.height / h, self.width / w)
        nw, nh = round(w * gain), round(h * gain)
        top, left = round((self.height - nh) / 2 - 0.1), round((self.width - nw) / 2 - 0.1)
        canvas = np.full((self.height, self.width, 3), PAD, dtype=np.uint8)
        canvas[top : top + nh, left : left + nw] = (
            image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh))
        )
        return canvas, gain, left, top


def decode(out: npt.NDArray[np.float32], conf: float, nc: int) -> npt.NDArray[np.float32]:
    """The model's (4 + nc, anchors) output -> rows (x1, y1, x2, y2, confidence, class)."""
    scores = out[4 : 4 + nc]
    keep = np.flatnonzero(scores.max(axis=0) > conf)
    if not keep.size:
        return np.zeros((0, 6), dtype=np.float32)
    cls = scores[:, keep].argmax(axis=0)
    best = scores[cls, keep]
    cx, cy, bw, bh = out[0, keep], out[1, keep], out[2, keep], out[3, keep]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    chosen = nms(boxes + (cls * MAX_WH)[:, None], best, IOU)[:MAX_DET]
    return np.concatenate(
        [boxes[chosen], best[chosen, None], cls[chosen, None].astype(np.float32)], axis=1
    ).astype(np.float32)


def nms(boxes: npt.NDArray[Any], scores: npt.NDArray[Any], iou: float) -> npt.NDArray[np.intp]:
    """Greedy NMS as torchvision's: highest score first, drop what overlaps a kept box > iou."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    kept: list[int] = []
    while order.size:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(kept, dtype=np.intp)
