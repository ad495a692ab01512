"""One YOLO model shared by all cameras, fed from a bounded queue and run in small batches.

Inference is blocking, so it runs on a single dedicated thread (one model, one thread: no
contention inside the backend). Requests from all cameras are gathered for at most
`max_wait_ms` into one batch of at most `max_batch` images, so the latency cost of batching is
bounded and known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.config import DetectorConfig
from analytics.detection import Detection

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


@dataclass
class _Request:
    camera_id: str
    image: Image
    future: asyncio.Future[list[Detection]]


@dataclass
class DetectorStats:
    batches: int = 0
    images: int = 0
    last_batch_size: int = 0
    inference_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))

    def p50_ms(self) -> float:
        return float(np.median(self.inference_ms)) if self.inference_ms else 0.0


class Detector:
    def __init__(self, config: DetectorConfig, queue_size: int = 64) -> None:
        self.config = config
        self.stats = DetectorStats()
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(queue_size)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yolo")
        self._model: Any = None
        self._names: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.effective_imgsz = config.imgsz
        self._base_conf = min([config.confidence, *config.class_confidence.values()])

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _load_blocking(self) -> None:
        from ultralytics import YOLO  # heavy import: only where a model is really needed

        model_ref = self.config.model
        path = Path(model_ref).expanduser()
        model = YOLO(str(path) if path.exists() else model_ref, task="detect")
        self._names = {int(k): str(v) for k, v in model.names.items()}
        # The first call builds the backend's graph (seconds); pay it before the first camera.
        model.predict(
            np.zeros((self.config.imgsz, self.config.imgsz, 3), dtype=np.uint8),
            imgsz=self.config.imgsz,
            device=self.config.device,
            verbose=False,
        )
        self._model = model
        predictor = getattr(model, "predictor", None)
        actual = list(getattr(predictor, "imgsz", None) or [])
        self.effective_imgsz = int(max(actual)) if actual else self.config.imgsz
        if self.effective_imgsz != self.config.imgsz:
            # Static exports (OpenVINO/ONNX/TFLite without dynamic shapes) run at the size they
            # were exported with, whatever imgsz says: say so instead of pretending.
            log.warning(
                "detector model=%s is a fixed-size export: it runs at %d px, not imgsz=%d "
                "(export it again with imgsz=%d to get that speed)",
                model_ref,
                self.effective_imgsz,
                self.config.imgsz,
                self.config.imgsz,
            )
        log.info(
            "detector model=%s imgsz=%d classes=%d ready",
            model_ref,
            self.config.imgsz,
            len(self._names),
        )

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load_blocking)
        self._task = asyncio.create_task(self._batch_loop(), name="detector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            req = self._queue.get_nowait()
            req.future.cancel()
        await asyncio.to_thread(self._pool.shutdown, True)

    @property
    def class_names(self) -> dict[int, str]:
        return dict(self._names)

    async def detect(self, camera_id: str, image: Image) -> list[Detection]:
        return await (await self.submit(camera_id, image))

    async def submit(self, camera_id: str, image: Image) -> asyncio.Future[list[Detection]]:
        """Queue one image and return at once with the future of its detections, so a camera
        can prepare its next frame while this one is in the model (the queue is bounded: a
        full queue makes the caller wait, it never drops a request)."""
        future: asyncio.Future[list[Detection]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(camera_id, image, future))
        return future

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.config.max_wait_ms / 1000.0
            while len(batch) < self.config.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            batch = [r for r in batch if not r.future.cancelled()]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(
                    self._pool, self._infer_blocking, [r.image for r in batch]
                )
            except Exception as exc:  # one bad batch must not kill detection for everyone
                log.exception("detector batch of %d failed", len(batch))
                for req in batch:
                    if not req.future.done():
                        req.future.set_exception(exc)
                continue
            for req, dets in zip(batch, results, strict=True):
                if not req.future.done():
                    req.future.set_result(dets)

    def _infer_blocking(self, images: list[Image]) -> list[list[Detection]]:
        started = time.perf_counter()
        results = self._model.predict(
            images,
            imgsz=self.config.imgsz,
            conf=self._base_conf,
            device=self.config.device,
            verbose=False,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.stats.batches += 1
        self.stats.images += len(images)
        self.stats.last_batch_size = len(images)
        self.stats.inference_ms.append(elapsed_ms)
        return [self._convert(r) for r in results]

    def _convert(self, result: Any) -> list[Detection]:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        xyxy = boxes.xyxy.cpu().numpy()
        confs = boxes.conf.cpu().numpy()
        classes = boxes.cls.cpu().numpy().astype(int)
        ids = boxes.id.cpu().numpy().astype(int) if boxes.id is not None else None
        out: list[Detection] = []
        for i in range(len(confs)):
            label = self._names.get(int(classes[i]), str(classes[i]))
            threshold = self.config.class_confidence.get(label, self.config.confidence)
            if confs[i] < threshold:
                continue
            x1, y1, x2, y2 = (float(v) for v in xyxy[i])
            out.append(
                Detection(
                    label,
                    int(classes[i]),
                    float(confs[i]),
                    x1,
                    y1,
                    x2,
                    y2,
                    int(ids[i]) if ids is not None else None,
                )
            )
        return out
