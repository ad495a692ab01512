"""The weekly OPD report on its schedule: every `report.weekday` at `report.at` (site time)
the week before is made, kept in `<data_dir>/reports/<week>.pdf` and `.json`, and mailed to
the leaders in `report.recipients` with the PDF attached. A process that was down at that
moment makes it when it comes back; the files are the record (`<week>.mailed` once it went
out), so a week is made once, mailed once, and a mail that failed is tried again each minute.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from events.config import WEEKDAYS, ReportConfig, Smtp
from events.model import utcnow
from events.notify.channels import send_mail
from events.report import WeeklyReport, build, previous_week, week_bounds
from events.store import Store

log = logging.getLogger(__name__)
WEEK = r"^\d{4}-W\d{2}$"


class Reports:
    def __init__(
        self,
        store: Store,
        folder: Path,
        config: ReportConfig,
        timezone: str,
        title: str,
        opd_names: Callable[[], dict[str, str]],
        smtp: Smtp | None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.folder = folder
        self.config = config
        self.timezone = timezone
        self.title = title
        self.opd_names = opd_names
        self.smtp = smtp
        self.now = now
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def reconfigure(self, config: ReportConfig, timezone: str, title: str) -> None:
        self.config, self.timezone, self.title = config, timezone, title

    # ---- figures and files -----------------------------------------------------------------
    async def figures(self, week: str) -> WeeklyReport:
        week_bounds(week, self.timezone)  # ValueError for a week that does not exist
        return await build(self.store, week, self.timezone, self.opd_names(), self.title,
                           self.now())  # fmt: skip

    def pdf_path(self, week: str) -> Path:
        return self.folder / f"{week}.pdf"

    def made(self) -> list[str]:
        """Weeks whose report was made (newest first)."""
        if not self.folder.is_dir():
            return []
        return sorted((p.stem for p in self.folder.glob("*-W*.pdf")), reverse=True)

    async def make(self, week: str) -> Path:
        """Build the week's report and keep it (PDF and JSON); returns the PDF."""
        return (await self._make(week))[0]

    async def _make(self, week: str) -> tuple[Path, WeeklyReport]:
        from events.report_pdf import write_pdf  # matplotlib: only when a report is made

        report = await self.figures(week)
        path = self.pdf_path(week)
        await asyncio.to_thread(write_pdf, report, path)
        doc = json.dumps(report.as_dict(), default=str, ensure_ascii=False, indent=1)
        await asyncio.to_thread(path.with_suffix(".json").write_text, doc, "utf-8")
        log.info("weekly report %s made: %s", week, path)
        return path, report

    # ---- the schedule -----------------------------------------------------------------------
    def due(self, now: datetime) -> str | None:
        """The week whose report is due by `now` (the week before, once this week's report
        moment has passed), or None before that moment."""
        if not self.config.enabled:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        monday = local.date() - timedelta(days=local.weekday())
        hour, minute = (int(x) for x in self.config.at.split(":"))
        moment = datetime.combine(
            monday + timedelta(days=WEEKDAYS.index(self.config.weekday)), time(hour, minute),
            local.tzinfo,
        )  # fmt: skip
        return previous_week(local, self.timezone) if local >= moment else None

    async def run_once(self) -> str | None:
        """Make and mail the due report where that was not done yet; returns its week when
        something was done."""
        async with self._lock:
            week = self.due(self.now())
            if week is None:
                return None
            path, did = self.pdf_path(week), False
            report: WeeklyReport | None = None
            if not path.is_file():
                path, report = await self._make(week)
                did = True
            marker = path.with_suffix(".mailed")
            if self.config.recipients and not marker.is_file():
                if self.smtp is None:
                    if did:
                        log.error("weekly report %s not mailed: notify.smtp is not set up", week)
                    return week if did else None
                report = report or await self.figures(week)
                if await asyncio.to_thread(self._mail, report, path):
                    marker.write_text(self.now().isoformat(), encoding="utf-8")
                did = True
            return week if did else None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="weekly-report")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            # A minute first: a starting process has better things to do than render a PDF
            # (and a process stopped at once would wait for the render's thread).
            await asyncio.sleep(60)
            try:
                await self.run_once()
            except Exception:  # a bad week must not end the schedule; tried again in a minute
                log.exception("weekly report failed")

    # ---- mail -------------------------------------------------------------------------------
    def message(self, report: WeeklyReport, pdf: Path) -> EmailMessage:
        from events.report_pdf import period

        assert self.smtp is not None
        msg = EmailMessage()
        msg["Subject"] = f"[Pantau] Laporan kinerja OPD minggu {report.week}"
        msg["From"] = self.smtp.sender
        msg["To"] = ", ".join(self.config.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.smtp.sender.split("@")[1])
        lines = [f"Laporan kinerja OPD {report.title}, {period(report)}.", ""]
        for o in report.opds:
            sla = "—" if o.sla_ack_pct is None else f"{o.sla_ack_pct:.0f}%"
            lines.append(f"- {o.opd_name}: {o.routed} kejadian, diterima sesuai SLA {sla}, "
                         f"pelanggaran SLA {o.ack_breaches + o.resolve_breaches}, "
                         f"alarm palsu {o.false_alarms}")  # fmt: skip
        lines += ["", "Rincian dan grafik ada di lampiran PDF."]
        msg.set_content("\n".join(lines))
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename=f"laporan-kinerja-opd-{report.week}.pdf")  # fmt: skip
        return msg

    def _mail(self, report: WeeklyReport, pdf: Path) -> bool:
        assert self.smtp is not None
        try:
            send_mail(self.smtp, self.message(report, pdf))
        except (OSError, smtplib.SMTPException) as exc:
            # The PDF is kept (leaders can download it from the wall); tried again next minute.
            log.error("weekly report %s not mailed: %s", report.week, exc)
            return False
        log.info("weekly report %s mailed to %s", report.week, ", ".join(self.config.recipients))
        return True
