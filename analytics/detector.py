"""One YOLO model shared by all cameras, fed from a bounded queue and run in small batches.

Inference is blocking, so it runs on threads of its own: one batch at a time through
ultralytics, one per stream of a directly run OpenVINO export (the next batch is packed while
the last one is in the model). Requests from all cameras are gathered for at most
`max_wait_ms` into one batch of at most `max_batch` images, so the latency cost of batching is
bounded and known.

Each frame is detected at its camera's detect size (the longer side of the frame in model
pixels; `imgsz` unless the camera sets `detect_size`). A fixed-size export (OpenVINO, ONNX,
TFLite: a static 640x640 input no `imgsz` can change) gets frames packed side by side into one
input where they fit (analytics/mosaic.py): two 16:9 frames at 560 px or six at 320 px cost one
inference. A dynamic model (.pt) runs each size natively.
"""

from __future__ import annotations

import asyncio
import logging
import threading
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
from analytics.mosaic import Packer, unpack
from analytics.openvino_runner import Box, OpenVinoRunner, openvino_export

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


@dataclass
class _Request:
    camera_id: str
    image: Image
    size: int
    future: asyncio.Future[list[Detection]]


@dataclass
class DetectorStats:
    batches: int = 0
    images: int = 0
    inferences: int = 0  # model runs: fewer than images when frames share a mosaic
    last_batch_size: int = 0
    inference_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))

    def p50_ms(self) -> float:
        return float(np.median(self.inference_ms)) if self.inference_ms else 0.0


class Detector:
    def __init__(self, config: DetectorConfig, queue_size: int = 64) -> None:
        self.config = config
        self.stats = DetectorStats()
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(queue_size)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yolo")  # loading
        self._infer_pool: ThreadPoolExecutor | None = None
        self._model: Any = None  # ultralytics' YOLO, unless `_runner` runs the export itself
        self._runner: OpenVinoRunner | None = None
        self._names: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stats_lock = threading.Lock()  # batches finish on several threads
        self.effective_imgsz = config.imgsz
        self.fixed_size: int | None = None  # the static input of an export, None if dynamic
        self._packer: Packer | None = None
        self._base_conf = min([config.confidence, *config.class_confidence.values()])

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _load_blocking(self) -> None:
        model_ref = self.config.model
        xml = openvino_export(model_ref) if self.config.device.lower() in ("cpu", "") else None
        runner = OpenVinoRunner(xml) if xml is not None else None
        if runner is not None and runner.height == runner.width:
            self._runner = runner
            self._names = dict(runner.names)
            self._runner.detect([np.zeros((runner.height, runner.width, 3), np.uint8)], 0.5)
            fixed: list[int] = [runner.height, runner.width]
        else:
            from ultralytics import YOLO  # heavy import: only where a model is really needed

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
            backend = getattr(getattr(model, "predictor", None), "model", None)
            dynamic = getattr(backend, "dynamic", False)
            fixed = [] if dynamic else list(getattr(backend, "imgsz", None) or [])
        if fixed:
            self.fixed_size = int(max(fixed))
            self._packer = Packer(self.fixed_size)
            self.effective_imgsz = min(self.config.imgsz, self.fixed_size)
            if self.config.imgsz > self.fixed_size:
                log.warning(
                    "detector model=%s is a fixed %d px export: imgsz=%d is not possible, "
                    "frames run at %d px (export it again with imgsz=%d)",
                    model_ref,
                    self.fixed_size,
                    self.config.imgsz,
                    self.fixed_size,
                    self.config.imgsz,
                )
            elif self.config.imgsz < self.fixed_size:
                log.info(
                    "detector model=%s is a fixed %d px export: frames at %d px share one input",
                    model_ref,
                    self.fixed_size,
                    self.config.imgsz,
                )
        log.info(
            "detector model=%s imgsz=%d classes=%d ready",
            model_ref,
            self.config.imgsz,
            len(self._names),
        )

    @property
    def parallel_batches(self) -> int:
        """Batches in the model at once: one per stream of a directly run export, so the next
        batch starts while the last one's boxes are decoded and its frames are packed; one
        through ultralytics (its predictor keeps state between calls)."""
        return self._runner.streams if self._runner is not None else 1

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load_blocking)
        self._infer_pool = ThreadPoolExecutor(self.parallel_batches, thread_name_prefix="infer")
        self._task = asyncio.create_task(self._batch_loop(), name="detector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        while not self._queue.empty():
            req = self._queue.get_nowait()
            req.future.cancel()
        await asyncio.to_thread(self._pool.shutdown, True)
        if self._infer_pool is not None:
            await asyncio.to_thread(self._infer_pool.shutdown, True)

    @property
    def class_names(self) -> dict[int, str]:
        return dict(self._names)

    async def detect(
        self, camera_id: str, image: Image, size: int | None = None
    ) -> list[Detection]:
        return await (await self.submit(camera_id, image, size))

    async def submit(
        self, camera_id: str, image: Image, size: int | None = None
    ) -> asyncio.Future[list[Detection]]:
        """Queue one image and return at once with the future of its detections, so a camera
        can prepare its next frame while this one is in the model (the queue is bounded: a
        full queue makes the caller wait, it never drops a request)."""
        future: asyncio.Future[list[Detection]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(camera_id, image, size or self.config.imgsz, future))
        return future

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.parallel_batches)
        while True:
            # A batch is formed when the model has room for it, so what queued meanwhile
            # goes together.
            await slots.acquire()
            try:
                batch = await self._next_batch(loop)
            except BaseException:
                slots.release()
                raise
            task = asyncio.create_task(self._run_batch(batch, slots), name="detector-batch")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> list[_Request]:
        batch: list[_Request] = []
        try:
            while True:
                batch = [await self._queue.get()]
                # An idle detector waits a moment for company; a busy one (frames already
                # queued while the last batch ran) takes what is there and goes: waiting would
                # only idle it.
                backlog = not self._queue.empty()
                deadline = loop.time() + (0.0 if backlog else self.config.max_wait_ms / 1000.0)
                while len(batch) < self.config.max_batch:
                    if not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                        continue
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                batch = [r for r in batch if not r.future.cancelled()]
                if batch:
                    return batch
        except asyncio.CancelledError:  # stopped while gathering: nobody waits forever
            for req in batch:
                req.future.cancel()
            raise

    async def _run_batch(self, batch: list[_Request], slots: asyncio.Semaphore) -> None:
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._infer_pool, self._infer_blocking, [r.image for r in batch],
                [r.size for r in batch])  # fmt: skip
        except asyncio.CancelledError:
            for req in batch:
                req.future.cancel()
            raise
        except Exception as exc:  # one bad batch must not kill detection for everyone
            log.exception("detector batch of %d failed", len(batch))
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(exc)
            return
        finally:
            slots.release()
        for req, dets in zip(batch, results, strict=True):
            if not req.future.done():
                req.future.set_result(dets)

    def _infer_blocking(
        self, images: list[Image], sizes: list[int] | None = None
    ) -> list[list[Detection]]:
        started = time.perf_counter()
        sizes = sizes or [self.config.imgsz] * len(images)
        out: list[list[Detection]] = [[] for _ in images]
        inferences = 0
        if self._packer is None:  # dynamic input: each size natively, same sizes together
            for size in sorted(set(sizes)):
                picked = [i for i, s in enumerate(sizes) if s == size]
                for i, dets in zip(
                    picked, self._predict([images[i] for i in picked], size), strict=True
                ):
                    out[i] = dets
                inferences += len(picked)
        else:
            packer = self._packer
            placements = packer.place(
                [(im.shape[1], im.shape[0], s) for im, s in zip(images, sizes, strict=True)]
            )
            inferences = max(p.canvas for p in placements) + 1
            inputs: list[Image] = []
            for index in range(inferences):
                alone = [i for i, p in enumerate(placements) if p.canvas == index]
                if len(alone) == 1 and sizes[alone[0]] >= packer.size:
                    # one full-size frame: letterboxed as ultralytics does, the classic path
                    inputs.append(images[alone[0]])
                else:
                    inputs.append(packer.render(images, placements, index))
            # every input of the batch at once: the backend runs them in parallel where it can
            for index, dets in enumerate(self._predict(inputs, packer.size)):
                alone = [i for i, p in enumerate(placements) if p.canvas == index]
                if len(alone) == 1 and sizes[alone[0]] >= packer.size:
                    out[alone[0]] = dets
                else:
                    for i, mine in unpack(dets, placements, index).items():
                        out[i] = mine
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.images += len(images)
            self.stats.inferences += inferences
            self.stats.last_batch_size = len(images)
            self.stats.inference_ms.append(elapsed_ms / max(inferences, 1))
        return out

    def _predict(self, images: list[Image], imgsz: int) -> list[list[Detection]]:
        if self._runner is not None:
            return [self._kept(rows) for rows in self._runner.detect(images, self._base_conf)]
        # A fixed-size export takes one image per run; a dynamic model a batch of one size.
        groups = [[im] for im in images] if self.fixed_size else [images]
        results = [
            result
            for group in groups
            for result in self._model.predict(
                group, imgsz=imgsz, conf=self._base_conf, device=self.config.device, verbose=False
            )
        ]
        out: list[list[Detection]] = []
        for result in results:
            boxes = result.boxes
            if boxes is None or len(boxes) == 0:
                out.append([])
                continue
            xyxy = boxes.xyxy.cpu().numpy().astype(float)
            confs = boxes.conf.cpu().numpy().astype(float)
            classes = boxes.cls.cpu().numpy().astype(int)
            out.append(self._kept([
                (xyxy[i, 0], xyxy[i, 1], xyxy[i, 2], xyxy[i, 3], confs[i], int(classes[i]))
                for i in range(len(confs))]))  # fmt: skip
        return out

    def _kept(self, rows: list[Box]) -> list[Detection]:
        """Boxes (x1, y1, x2, y2, confidence, class) -> those over their class's confidence."""
        out: list[Detection] = []
        for x1, y1, x2, y2, conf, cls in rows:
            label = self._names.get(cls, str(cls))
            if conf < self.config.class_confidence.get(label, self.config.confidence):
                continue
            out.append(Detection(label, cls, conf, x1, y1, x2, y2, None))
        return out
