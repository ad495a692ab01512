"""/metrics in the Prometheus text format, from the runtime's health and the store.

Kept to what a command center alerts on: cameras up or not, detector load, analytics per camera,
open incidents per kind and state, dead notifications, wall screens connected, workers of a
scaled-out site; and the process itself (memory, CPU, open files: prometheus_client's process
collector). The numbers are the runtime's state at scrape time, so each scrape renders a fresh
registry from one snapshot of it (prometheus_client's pattern for state that lives elsewhere).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from events.false_alarms import RuleHonesty
from events.model import Delivery, Incident

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class _Snapshot(Collector):
    def __init__(
        self, health: dict[str, object], open_incidents: list[Incident], dead: list[Delivery],
        honesty: list[RuleHonesty],
    ) -> None:  # fmt: skip
        self.health, self.open_incidents, self.dead = health, open_incidents, dead
        self.honesty = honesty

    def collect(self) -> Iterator[Metric]:
        yield from self._cameras()
        yield from self._detector()
        yield from self._analytics()
        yield from self._workers()
        yield from self._incidents()
        disk = self.health.get("disk")
        if isinstance(disk, dict):
            yield GaugeMetricFamily("pantau_disk_free_bytes", "free space on the data disk",
                                    value=_num(disk.get("free_mb")) * 1024 * 1024)  # fmt: skip
            yield GaugeMetricFamily(
                "pantau_disk_full",
                "1 while the store cannot write (the disk is full)",
                value=1.0 if disk.get("full") else 0.0,
            )
        lag = self.health.get("loop_lag")
        if isinstance(lag, dict):
            yield GaugeMetricFamily(
                "pantau_event_loop_lag_p99_seconds",
                "how late the event loop ran what was due, p99 over the last minute",
                value=_num(lag.get("p99_ms")) / 1000,
            )
        share = GaugeMetricFamily(
            "pantau_false_alarm_share",
            "share of a camera rule's incidents closed as false alarm",
            labels=["camera", "rule", "window"],
        )
        for h in self.honesty:
            for window, value in (("7d", h.share_7d), ("30d", h.share_30d)):
                if value is not None:
                    share.add_metric([h.camera_id, h.rule, window], value)
        yield share
        flagged = GaugeMetricFamily(
            "pantau_rule_flagged", "1 for a camera rule above the false-alarm share it may have",
            labels=["camera", "rule"],
        )  # fmt: skip
        for h in self.honesty:
            flagged.add_metric([h.camera_id, h.rule], 1.0 if h.flagged else 0.0)
        yield flagged
        memory = self.health.get("memory")
        if isinstance(memory, dict):
            # What RSS alone cannot tell apart on a box that grows: the C heap, SQLite's
            # caches inside it, Python's objects (pymalloc arenas, outside mallinfo).
            for name, key, doc in (
                ("pantau_malloc_in_use_bytes", "malloc_in_use_mb", "C heap in use (mallinfo2)"),
                ("pantau_sqlite_memory_bytes", "sqlite_mb", "SQLite memory, all connections"),
            ):
                if memory.get(key) is not None:
                    yield GaugeMetricFamily(name, doc, value=_num(memory[key]) * 1e6)
            if memory.get("python_blocks") is not None:
                yield GaugeMetricFamily("pantau_python_allocated_blocks",
                                        "Python objects' allocated memory blocks",
                                        value=_num(memory["python_blocks"]))  # fmt: skip
        wall = GaugeMetricFamily("pantau_wall_clients", "wall screens connected")
        wall.add_metric([], _num(self.health.get("wall_clients")))
        yield wall

    def _cameras(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pantau_camera_up", "1 when the camera delivers frames", labels=["camera", "state"]
        )
        cameras = self.health.get("cameras")
        for cam, state in cameras.items() if isinstance(cameras, dict) else []:
            up.add_metric([str(cam), str(state)], 1.0 if state == "online" else 0.0)
        yield up
        decoding = self.health.get("decoding")
        if isinstance(decoding, dict):
            fps = GaugeMetricFamily(
                "pantau_camera_decoded_fps", "frames decoded per second (few while quiet)",
                labels=["camera"],
            )  # fmt: skip
            quiet = GaugeMetricFamily(
                "pantau_camera_keyframes_only", "1 while a quiet camera decodes keyframes only",
                labels=["camera"],
            )  # fmt: skip
            for cam, d in decoding.items():
                if isinstance(d, dict):
                    fps.add_metric([str(cam)], _num(d.get("decoded_fps")))
                    quiet.add_metric([str(cam)], 1.0 if d.get("mode") == "keyframes" else 0.0)
            yield fps
            yield quiet

    def _detector(self) -> Iterator[Metric]:
        detector = self.health.get("detector")
        if not isinstance(detector, dict):
            return
        for name, help_, key in (
            ("pantau_detector_batches", "detector batches run", "batches"),
            ("pantau_detector_images", "images through the detector", "images"),
        ):
            counter = CounterMetricFamily(name, help_)
            counter.add_metric([], _num(detector.get(key)))
            yield counter
        for name, help_, key in (
            ("pantau_detector_inference_ms_p50", "median batch inference time, ms",
             "inference_ms_p50"),
            ("pantau_detector_queue_depth", "frames waiting for the detector", "queue_depth"),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, help_, value=_num(detector.get(key)))

    def _analytics(self) -> Iterator[Metric]:
        analytics = self.health.get("analytics")
        if not isinstance(analytics, dict):
            return
        frames = CounterMetricFamily(
            "pantau_analytics_frames", "frames sampled for analytics", labels=["camera"]
        )
        detected = CounterMetricFamily(
            "pantau_analytics_detected", "frames sent to the detector", labels=["camera"]
        )
        objects = GaugeMetricFamily(
            "pantau_zone_objects", "objects in a zone now", labels=["camera", "zone", "cls"]
        )
        for cam, stats in analytics.items():
            if not isinstance(stats, dict):
                continue
            frames.add_metric([str(cam)], _num(stats.get("frames")))
            detected.add_metric([str(cam)], _num(stats.get("detected")))
            zones = stats.get("zone_counts")
            for zone, counts in zones.items() if isinstance(zones, dict) else []:
                for cls, n in counts.items():
                    objects.add_metric([str(cam), str(zone), str(cls)], _num(n))
        yield from (frames, detected, objects)

    def _workers(self) -> Iterator[Metric]:
        workers = self.health.get("workers")
        if not isinstance(workers, list):
            return
        up = GaugeMetricFamily(
            "pantau_worker_up", "1 while the worker's heartbeat is alive", labels=["worker"]
        )
        held = GaugeMetricFamily("pantau_worker_cameras", "cameras the worker holds",
                                 labels=["worker"])  # fmt: skip
        fps = GaugeMetricFamily("pantau_worker_detector_fps", "images analysed per second",
                                labels=["worker"])  # fmt: skip
        cpu = GaugeMetricFamily(
            "pantau_worker_cpu_percent", "worker process CPU, % of a core", labels=["worker"]
        )
        for w in workers:
            if not isinstance(w, dict):
                continue
            name = [str(w.get("name", "?"))]
            up.add_metric(name, 1.0 if w.get("state") == "running" else 0.0)
            held.add_metric(name, float(len(w.get("cameras") or [])))
            fps.add_metric(name, _num(w.get("detector_fps")))
            cpu.add_metric(name, _num(w.get("cpu_percent")))
        yield from (up, held, fps, cpu)

    def _incidents(self) -> Iterator[Metric]:
        # Declared even when there is none, so dashboards see the series exists.
        open_ = GaugeMetricFamily("pantau_incidents_open",
                                  "incidents not yet closed, by kind and state",
                                  labels=["kind", "state"])  # fmt: skip
        by_kind = Counter((str(i.kind), str(i.state)) for i in self.open_incidents)
        for (kind, state), n in sorted(by_kind.items()):
            open_.add_metric([kind, state], float(n))
        dead = GaugeMetricFamily(
            "pantau_deliveries_dead", "notifications that gave up in the last 24 h", labels=["opd"]
        )
        for opd, n in sorted(Counter(d.opd_id for d in self.dead).items()):
            dead.add_metric([opd], float(n))
        yield from (open_, dead)


def render(
    health: dict[str, object], open_incidents: Iterable[Incident], dead: Iterable[Delivery],
    honesty: Iterable[RuleHonesty] = (),
) -> bytes:  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(health, list(open_incidents), list(dead), list(honesty)))
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, open fds, CPU seconds
    return generate_latest(registry)
