"""/metrics in the Prometheus text format, from the runtime's health and the store.

Kept to what a command center alerts on: cameras up or not, detector load, analytics per camera,
open incidents per kind and state, dead notifications, wall screens connected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from events.model import Delivery, Incident


def _labels(**labels: object) -> str:
    if not labels:
        return ""

    def escape(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def declare(self, name: str, type_: str, help_: str) -> None:
        if name not in self._declared:
            self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {type_}"]
            self._declared.add(name)

    def add(self, name: str, type_: str, help_: str, value: float, **labels: object) -> None:
        self.declare(name, type_, help_)
        self.lines.append(f"{name}{_labels(**labels)} {value:g}")


def render(
    health: dict[str, object], open_incidents: Iterable[Incident], dead: Iterable[Delivery]
) -> str:
    out = _Out()
    cameras = health.get("cameras")
    if isinstance(cameras, dict):
        for cam, state in cameras.items():
            out.add("pantau_camera_up", "gauge", "1 when the camera delivers frames",
                    1 if state == "online" else 0, camera=cam, state=state)  # fmt: skip
    detector = health.get("detector")
    if isinstance(detector, dict):
        out.add("pantau_detector_batches_total", "counter", "detector batches run",
                float(detector.get("batches", 0)))  # fmt: skip
        out.add("pantau_detector_images_total", "counter", "images through the detector",
                float(detector.get("images", 0)))  # fmt: skip
        out.add("pantau_detector_inference_ms_p50", "gauge", "median batch inference time, ms",
                float(detector.get("inference_ms_p50", 0)))  # fmt: skip
        out.add("pantau_detector_queue_depth", "gauge", "frames waiting for the detector",
                float(detector.get("queue_depth", 0)))  # fmt: skip
    analytics = health.get("analytics")
    if isinstance(analytics, dict):
        for cam, stats in analytics.items():
            if not isinstance(stats, dict):
                continue
            out.add("pantau_analytics_frames_total", "counter", "frames sampled for analytics",
                    float(stats.get("frames", 0)), camera=cam)  # fmt: skip
            out.add("pantau_analytics_detected_total", "counter", "frames sent to the detector",
                    float(stats.get("detected", 0)), camera=cam)  # fmt: skip
            zones = stats.get("zone_counts")
            for zone, counts in zones.items() if isinstance(zones, dict) else []:
                for cls, n in counts.items():
                    out.add("pantau_zone_objects", "gauge", "objects in a zone now",
                            float(n), camera=cam, zone=zone, cls=cls)  # fmt: skip
    workers = health.get("workers")
    for w in workers if isinstance(workers, list) else []:
        if not isinstance(w, dict):
            continue
        name = w.get("name", "?")
        out.add("pantau_worker_up", "gauge", "1 while the worker's heartbeat is alive",
                1.0 if w.get("state") == "running" else 0.0, worker=name)  # fmt: skip
        out.add("pantau_worker_cameras", "gauge", "cameras the worker holds",
                float(len(w.get("cameras") or [])), worker=name)  # fmt: skip
        out.add("pantau_worker_detector_fps", "gauge", "images analysed per second",
                float(w.get("detector_fps", 0)), worker=name)  # fmt: skip
        out.add("pantau_worker_cpu_percent", "gauge", "CPU of the worker process (% of a core)",
                float(w.get("cpu_percent", 0)), worker=name)  # fmt: skip
    by_kind = Counter((str(i.kind), str(i.state)) for i in open_incidents)
    # Declared even when there is none, so dashboards see the series exists.
    out.declare("pantau_incidents_open", "gauge", "incidents not yet closed, by kind and state")
    for (kind, state), n in sorted(by_kind.items()):
        out.add("pantau_incidents_open", "gauge", "", n, kind=kind, state=state)
    dead_by_opd = Counter(d.opd_id for d in dead)
    out.declare("pantau_deliveries_dead", "gauge", "notifications that gave up in the last 24 h")
    for opd, n in sorted(dead_by_opd.items()):
        out.add("pantau_deliveries_dead", "gauge", "", n, opd=opd)
    out.add("pantau_wall_clients", "gauge", "wall screens connected",
            float(health.get("wall_clients", 0) or 0))  # type: ignore[arg-type]  # fmt: skip
    return "\n".join(out.lines) + "\n"
