"""`pantau replay`: what the rules would have done on a video, printed and charted."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pantau.config import PantauConfig
from pantau.replay import Clip, ReplayReport, file_clip, recordings, replay
from pantau.replay_chart import draw

EXIT_BAD_INPUT = 2


def _when(text: str, zone: ZoneInfo) -> datetime:
    """An ISO time; without an offset it is the site's local time (what an operator reads)."""
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=zone) if at.tzinfo is None else at


def _clock(report: ReplayReport, seconds: float, zone: ZoneInfo) -> str:
    at = (report.started_at + timedelta(seconds=seconds)).astimezone(zone)
    return f"{seconds:7.1f} s  {at:%H:%M:%S}"


def lines(report: ReplayReport, zone: ZoneInfo) -> list[str]:
    out = [f"{report.camera_id}: {report.source}: {report.frames} frames analysed over "
           f"{report.duration_s:.0f} s of video in {report.wall_s:.1f} s "
           f"({report.speed:.1f}x)"]  # fmt: skip
    for rule in report.rules:
        where = f" in {rule.zone}" if rule.zone else ""
        out.append(f"{rule.key} ({rule.type}{where}, {rule.measure}, threshold "
                   f"{rule.threshold:g}, for {rule.for_s:g} s, clear after "
                   f"{rule.clear_after_s:g} s, cooldown {rule.cooldown_s:g} s): "
                   f"{len(rule.incidents)} incident(s)")  # fmt: skip
        for inc in rule.incidents:
            closed = (
                _clock(report, inc.closed_s, zone) if inc.closed_s is not None else "still open"
            )
            out.append(f"  opened {_clock(report, inc.opened_s, zone)}  closed {closed}  "
                       f"peak {inc.peak:g}")  # fmt: skip
    return out


def cmd_replay(args: argparse.Namespace, config: PantauConfig) -> int:
    base = Path(args.config).resolve().parent
    zone = ZoneInfo(config.ui.timezone)
    if not any(c.id == args.camera for c in config.cameras):
        sys.stderr.write(f"{args.config}: no camera {args.camera!r}\n")
        return EXIT_BAD_INPUT
    begin: datetime | None = None
    end: datetime | None = None
    try:
        if args.video:
            clips: list[Clip] = [file_clip(Path(args.video))]
        elif args.start and args.end:
            start, end = _when(args.start, zone), _when(args.end, zone)
            if end <= start:
                sys.stderr.write("--to must be after --from\n")
                return EXIT_BAD_INPUT
            begin = start.astimezone(UTC)
            clips = recordings(config, base, args.camera, begin, end.astimezone(UTC))
        else:
            sys.stderr.write("give a video file, or --from and --to for the camera's recordings\n")
            return EXIT_BAD_INPUT
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_BAD_INPUT
    models = base / config.storage.data_dir / "state_models"
    report = asyncio.run(replay(config, args.camera, clips, begin, end, models))
    out = Path(args.out or f"replay-{args.camera}.png")
    marks = draw(report, out)
    sys.stdout.write("".join(f"{line}\n" for line in lines(report, zone)))
    sys.stdout.write(f"chart: {out}\n")
    if args.json:
        summary = {**report.as_dict(), "chart": str(out), "threshold_px": marks,
                   "lines": lines(report, zone)}  # fmt: skip
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0
