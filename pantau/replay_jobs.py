"""Rule tests started from the wall: each one is `pantau replay` in a child process at a lower
CPU priority (the live cameras come first), on cameras.yaml as it is on disk now (the editor
has just saved it). The last `keep` jobs are remembered; their files live in the data dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from events.model import ClipRef, new_id, utcnow
from pantau.reloader import ConfigSource
from wallboard.deps import ReplayJob

log = logging.getLogger(__name__)
FetchClip = Callable[[ClipRef, Path], Awaitable[None]]


class ReplayJobs:
    def __init__(self, source: ConfigSource, folder: Path, keep: int = 20,
                 timeout_s: float = 900.0, fetch: FetchClip | None = None) -> None:  # fmt: skip
        self.source = source
        self.fetch = fetch  # scaled out: a clip from the worker that cut it
        self.folder = folder
        self.keep = keep
        self.timeout_s = timeout_s
        self.jobs: OrderedDict[str, ReplayJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self, camera_id: str, clip: Path | ClipRef | None, minutes: float, by: str
    ) -> ReplayJob:
        self.folder.mkdir(parents=True, exist_ok=True)
        job_id = new_id("rpl")
        now = utcnow()
        args = [str(self.source.path)]
        fetched: tuple[ClipRef, Path] | None = None
        if isinstance(clip, ClipRef):
            local = self.folder / f"{job_id}.mp4"
            fetched = (clip, local)
            args.append(str(local))
            source = f"{Path(clip.path).name} (from {clip.worker})"
        elif clip is not None:
            args.append(str(clip))
            source = clip.name
        else:
            start = now - timedelta(minutes=minutes)
            args += ["--from", start.isoformat(), "--to", now.isoformat()]
            source = f"recordings {start:%H:%M:%S}-{now:%H:%M:%S} UTC"
        args += ["--camera", camera_id, "--out", str(self.folder / f"{job_id}.png"),
                 "--json", str(self.folder / f"{job_id}.json")]  # fmt: skip
        job = ReplayJob(id=job_id, camera_id=camera_id, source=source, by=by, state="running",
                        started_at=now)  # fmt: skip
        self.jobs[job_id] = job
        while len(self.jobs) > self.keep:
            old_id, _ = self.jobs.popitem(last=False)
            for suffix in (".png", ".json", ".mp4"):
                (self.folder / f"{old_id}{suffix}").unlink(missing_ok=True)
        task = asyncio.create_task(self._run(job, args, fetched), name=f"replay {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(
        self, job: ReplayJob, args: list[str], fetched: tuple[ClipRef, Path] | None
    ) -> None:
        if fetched is not None:
            try:
                if self.fetch is None:
                    raise OSError("clips on workers cannot be fetched here")
                await self.fetch(*fetched)
            except Exception as exc:  # LiveError, OSError: the job says why
                job.state, job.error, job.finished_at = "failed", str(exc), utcnow()
                return
        nice = [shutil.which("nice") or "nice", "-n", "10"] if shutil.which("nice") else []
        env = dict(self.source.env if self.source.env is not None else os.environ)
        proc = await asyncio.create_subprocess_exec(
            *nice, sys.executable, "-m", "pantau.cli", "replay", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (asyncio.CancelledError, TimeoutError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            job.state, job.error, job.finished_at = "failed", "stopped", utcnow()
            raise
        job.finished_at = utcnow()
        report = self.folder / f"{job.id}.json"
        if proc.returncode == 0 and report.is_file():
            data = json.loads(report.read_text())
            job.rules = data["rules"]
            job.lines = data["lines"]
            job.state = "done"
        else:
            job.state = "failed"
            job.error = err.decode(errors="replace").strip().splitlines()[-1:][0] if err else "?"
            log.warning("replay %s of camera=%s failed: %s", job.id, job.camera_id, job.error)

    def get(self, job_id: str) -> ReplayJob | None:
        return self.jobs.get(job_id)

    def chart(self, job_id: str) -> Path | None:
        job = self.jobs.get(job_id)
        path = self.folder / f"{job_id}.png"
        return path if job is not None and job.state == "done" and path.is_file() else None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
