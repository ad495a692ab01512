"""The shared detector with the REAL YOLO11n weights on real CCTV stills."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import cv2
import pytest

from analytics.config import DetectorConfig
from analytics.detector import Detector

pytestmark = pytest.mark.slow


@pytest.fixture
async def detector(model_path: Path) -> Detector:
    det = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await det.start()
    yield det  # type: ignore[misc]
    await det.stop()


def frame(assets: Path, name: str) -> object:
    image = cv2.imread(str(assets / "frames" / name))
    assert image is not None, name
    return image


async def labels(det: Detector, image: object) -> Counter[str]:
    return Counter(d.label for d in await det.detect("cam", image))  # type: ignore[arg-type]


async def test_counts_people_and_vehicles(detector: Detector, assets: Path) -> None:
    pets = await labels(detector, frame(assets, "pets2009_vtest_480x360_tiodh_f0170.jpg"))
    assert 6 <= pets["person"] <= 9
    street = await labels(detector, frame(assets, "traffic_street_cKuhn517_MIT_f0290.jpg"))
    assert 6 <= street["car"] <= 10
    crowd = await labels(detector, frame(assets, "overhead_crowd_lamminhthien_f0120.jpg"))
    assert 17 <= crowd["person"] <= 28


async def test_ultralytics_bus_image(detector: Detector) -> None:
    import ultralytics

    bus = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    found = await labels(detector, bus)
    assert found["person"] == 4 and found["bus"] == 1


async def test_concurrent_cameras_are_batched(detector: Detector, assets: Path) -> None:
    image = frame(assets, "pets2009_vtest_480x360_tiodh_f0170.jpg")
    single = await detector.detect("cam-0", image)  # type: ignore[arg-type]
    before = detector.stats.batches
    results = await asyncio.gather(
        *(detector.detect(f"cam-{i}", image) for i in range(4))  # type: ignore[arg-type]
    )
    assert detector.stats.batches - before < 4  # at least two cameras shared a batch
    for dets in results:
        assert [d.label for d in dets] == [d.label for d in single]
    assert detector.stats.p50_ms() > 0


async def test_stop_cancels_a_batch_still_gathering(model_path: Path, assets: Path) -> None:
    """A request taken off the queue into a batch that waits for company must not be left
    pending forever when the detector stops (its camera would wait on it)."""
    det = Detector(DetectorConfig(model=str(model_path), max_wait_ms=500, max_batch=8))
    await det.start()
    future = await det.submit("cam", frame(assets, "pets2009_vtest_480x360_tiodh_f0170.jpg"))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)  # taken into the batch, waiting 0.5 s for more
    assert det.queue_depth == 0 and not future.done()
    await det.stop()
    assert future.cancelled()


async def test_per_class_confidence(model_path: Path, assets: Path) -> None:
    strict = Detector(
        DetectorConfig(model=str(model_path), confidence=0.3, class_confidence={"person": 0.95})
    )
    await strict.start()
    try:
        found = await labels(strict, frame(assets, "pets2009_vtest_480x360_tiodh_f0170.jpg"))
        assert found["person"] == 0
    finally:
        await strict.stop()


async def test_fixed_size_export_reports_its_real_input_size(
    model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="analytics.detector")
    det = Detector(DetectorConfig(model=str(model_path), imgsz=320))
    await det.start()
    try:
        assert det.fixed_size == 640  # the shared export is static 640x640
        assert det.effective_imgsz == 320  # ...and 320 px frames share it
    finally:
        await det.stop()
    assert "fixed 640 px export: frames at 320 px share one input" in caplog.text


async def test_frames_at_smaller_sizes_share_one_input(detector: Detector, assets: Path) -> None:
    """Three cameras at the detect sizes their scenes need (people close by at 320 px, a street
    at 480, a far crowd at 560) cost two inferences instead of three, and each frame's boxes come
    back in its own pixels, where the full 640 px run put them."""
    names = [
        "pets2009_vtest_480x360_tiodh_f0170.jpg",
        "traffic_street_cKuhn517_MIT_f0290.jpg",
        "overhead_crowd_lamminhthien_f0120.jpg",
    ]
    images = [frame(assets, n) for n in names]
    full = [await detector.detect("cam", im) for im in images]  # type: ignore[arg-type]
    before = detector.stats.inferences
    packed = detector._infer_blocking(images, [320, 480, 560])  # type: ignore[arg-type]
    assert detector.stats.inferences - before == 2
    for name, image, ref, got in zip(names, images, full, packed, strict=True):
        h, w = image.shape[:2]  # type: ignore[attr-defined]
        assert all(0 <= d.x1 < d.x2 <= w and 0 <= d.y1 < d.y2 <= h for d in got), name
        wanted = [d for d in ref if d.label in {"person", "car", "truck", "bus"}]
        matched = sum(1 for r in wanted if any(g.label == r.label and g.iou(r) >= 0.5 for g in got))
        assert matched >= 0.7 * len(wanted), (name, matched, len(wanted))


@pytest.mark.parametrize(
    "weights",
    ["yolo11n_int8.tflite", "yolov8n_int8.onnx"],
    ids=["tflite", "onnx"],
)
async def test_other_backends_by_file_type(assets: Path, weights: str) -> None:
    """A site that exported to TFLite or ONNX points `model:` at the file; the backend follows
    the file type, and the same picture gives the same answer."""
    import ultralytics

    path = assets / "models" / weights
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    det = Detector(DetectorConfig(model=str(path), confidence=0.3))
    await det.start()
    try:
        bus = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
        found = await labels(det, bus)
        assert found["person"] == 4 and found["bus"] == 1, found
    finally:
        await det.stop()


async def test_openvino_export_runs_directly_with_ultralytics_answers(
    detector: Detector, model_path: Path, assets: Path
) -> None:
    """An OpenVINO export runs without ultralytics' predict (analytics/openvino_runner.py):
    on real frames of every sample clip, letterboxed or packed, the same boxes, scores and
    classes as ultralytics' own predict on the same model."""
    import numpy as np
    from ultralytics import YOLO

    assert detector._runner is not None  # the shared export takes the direct path
    reference = YOLO(str(model_path), task="detect")
    images = [frame(assets, p.name) for p in sorted((assets / "frames").glob("*.jpg"))]
    assert len(images) >= 4 and detector._packer is not None
    shapes = [(im.shape[1], im.shape[0], 320) for im in images]  # type: ignore[attr-defined]
    placed = detector._packer.place(shapes)
    canvases = [detector._packer.render(images, placed, c)  # type: ignore[arg-type]
                for c in sorted({p.canvas for p in placed})]  # fmt: skip
    boxes = 0
    for image in [*images, *canvases]:
        ref = reference.predict(image, imgsz=640, conf=0.3, verbose=False)[0].boxes
        want = sorted(zip(ref.cls.int().tolist(), ref.conf.tolist(), ref.xyxy.tolist(),
                          strict=True))  # fmt: skip
        found = await detector.detect("cam", image)  # type: ignore[arg-type]
        got = sorted((d.class_id, d.confidence, [d.x1, d.y1, d.x2, d.y2]) for d in found)
        assert [c for c, _, _ in got] == [c for c, _, _ in want]
        assert np.allclose([s for _, s, _ in got], [s for _, s, _ in want], atol=1e-3)
        assert np.allclose([b for _, _, b in got], [b for _, _, b in want], atol=0.5)
        boxes += len(got)
    assert boxes >= 20
