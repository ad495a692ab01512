"""The weekly OPD report as a PDF (A4 landscape, Bahasa Indonesia) and as chart PNGs for the
wall: a table of the week per OPD, response times per OPD, and the 8-week trend. Rendering
blocks (matplotlib), so callers run it in a thread; Figure objects are used directly, never
pyplot's global state, so two renders at once do not mix.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from events.report import WeeklyReport

A4_LANDSCAPE = (11.69, 8.27)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
ZONE_LABEL = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
COLUMNS = ("OPD", "Diteruskan", "Diterima\nsesuai SLA", "Terima\nmedian", "Terima\np90",
           "Selesai\nmedian", "Selesai\np90", "Pelanggaran\nSLA", "Alarm\npalsu")  # fmt: skip


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} dtk"
    if seconds < 5400:
        return f"{seconds / 60:.0f} mnt"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} jam".replace(".", ",")
    return f"{seconds / 86400:.1f} hari".replace(".", ",")


def period(report: WeeklyReport) -> str:
    a, b = report.starts, report.ends - timedelta(days=1)
    zone = ZONE_LABEL.get(report.timezone, report.timezone)
    return f"{a.day} {MONTHS[a.month - 1]} – {b.day} {MONTHS[b.month - 1]} {b.year} ({zone})"


def rows(report: WeeklyReport) -> list[list[str]]:
    out = []
    for o in report.opds:
        sla = (
            "—"
            if o.sla_ack_pct is None
            else f"{o.sla_ack_pct:.0f}% ({o.sla_ack_met}/{o.sla_ack_total})"
        )
        out.append([o.opd_name, str(o.routed), sla, duration(o.ack_p50_s), duration(o.ack_p90_s),
                    duration(o.resolve_p50_s), duration(o.resolve_p90_s),
                    str(o.ack_breaches + o.resolve_breaches), str(o.false_alarms)])  # fmt: skip
    return out


def _summary_page(report: WeeklyReport) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.04, 0.94, "Laporan Kinerja OPD", fontsize=22, weight="bold")
    fig.text(0.04, 0.905, f"{report.title} · Minggu {report.week}: {period(report)}", fontsize=12)
    body = rows(report) or [["(tidak ada OPD)", *[""] * (len(COLUMNS) - 1)]]
    # the table as tall as its rows; the chart takes the rest of the page
    height = min(0.6, 0.05 * (len(body) + 1.5))
    table_ax = fig.add_axes((0.04, 0.88 - height, 0.92, height))
    table_ax.axis("off")
    widths = [0.19, *[0.81 / (len(COLUMNS) - 1)] * (len(COLUMNS) - 1)]
    table = table_ax.table(cellText=body, colLabels=COLUMNS, colWidths=widths,
                           loc="upper center", cellLoc="center")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.9)
    for (r, c), cell in table.get_celld().items():
        if r == 0:
            cell.set_facecolor("#1e3a5f")
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
        elif c == 7 and cell.get_text().get_text() not in ("0", ""):
            cell.set_facecolor("#fde2e2")  # breaches stand out on paper
    chart = fig.add_axes((0.07, 0.08, 0.88, max(0.2, 0.88 - height - 0.17)))
    names = [o.opd_name for o in report.opds]
    med = [(o.ack_p50_s or 0) / 60 for o in report.opds]
    p90 = [(o.ack_p90_s or 0) / 60 for o in report.opds]
    xs = range(len(names))
    chart.bar([x - 0.2 for x in xs], med, width=0.4, label="median", color="#2563eb")
    chart.bar([x + 0.2 for x in xs], p90, width=0.4, label="p90", color="#93c5fd")
    chart.set_xticks(list(xs), names, fontsize=9)
    chart.set_ylabel("menit sampai diterima")
    chart.set_title("Waktu sampai diterima (acknowledge) per OPD", fontsize=11)
    chart.legend(fontsize=9)
    chart.grid(axis="y", alpha=0.3)
    return fig


def _trend_page(report: WeeklyReport) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.04, 0.94, "Tren 8 minggu", fontsize=18, weight="bold")
    fig.text(0.04, 0.905, f"{report.title} · sampai minggu {report.week}", fontsize=11)
    ack = fig.add_axes((0.07, 0.55, 0.88, 0.30))
    sla = fig.add_axes((0.07, 0.12, 0.88, 0.30))
    labels: list[str] = []
    for o in report.opds:
        points = report.trend.get(o.opd_id, [])
        labels = labels or [p.week.split("-")[1] for p in points]
        xs = list(range(len(points)))
        nan = float("nan")  # a week without incidents is a gap in the line
        minutes = [nan if p.ack_p50_s is None else p.ack_p50_s / 60 for p in points]
        ack.plot(xs, minutes, marker="o", label=o.opd_name)
        pct = [nan if p.sla_ack_pct is None else p.sla_ack_pct for p in points]
        sla.plot(xs, pct, marker="o", label=o.opd_name)
    for ax in (ack, sla):
        ax.set_xticks(list(range(len(labels))), labels)
    ack.set_ylabel("menit (median)")
    ack.set_title("Waktu sampai diterima, median per minggu", fontsize=11)
    sla.set_ylabel("% diterima sesuai SLA")
    sla.set_ylim(0, 105)
    sla.set_title("Diterima dalam batas SLA", fontsize=11)
    for ax in (ack, sla):
        ax.grid(alpha=0.3)
        if report.opds:
            ax.legend(fontsize=8, ncols=min(4, len(report.opds)))
    return fig


def write_pdf(report: WeeklyReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with PdfPages(tmp, metadata={"Title": f"Laporan Kinerja OPD {report.week}",
                                 "Author": "Pantau"}) as pdf:  # fmt: skip
        for fig in (_summary_page(report), _trend_page(report)):
            FigureCanvasAgg(fig)
            pdf.savefig(fig)
    tmp.replace(path)
    return path


def pdf_bytes(report: WeeklyReport) -> bytes:
    out = io.BytesIO()
    with PdfPages(out) as pdf:
        for fig in (_summary_page(report), _trend_page(report)):
            FigureCanvasAgg(fig)
            pdf.savefig(fig)
    return out.getvalue()


def chart_png(report: WeeklyReport, page: int = 0) -> bytes:
    fig = (_summary_page if page == 0 else _trend_page)(report)
    out = io.BytesIO()
    FigureCanvasAgg(fig).print_png(out)
    return out.getvalue()
