"""What an OPD is told: one notice (one or more incidents of one group), in Bahasa Indonesia.

The same notice is rendered three ways: a subject and plain text (e-mail, chat) and a JSON
document (webhooks, for OPD systems), each with links to the incident, its snapshot and clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from events.model import Incident, IncidentKind, Severity

KIND_ID = {
    IncidentKind.CROWD: "Kerumunan",
    IncidentKind.TRAFFIC: "Kemacetan",
    IncidentKind.FLOOD: "Banjir",
    IncidentKind.TAMPER: "Gangguan kamera",
    IncidentKind.OFFLINE: "Kamera mati",
    IncidentKind.FIRE: "Kebakaran",
    IncidentKind.ACCIDENT: "Kecelakaan",
    IncidentKind.LANDSLIDE: "Tanah longsor",
    IncidentKind.WEATHER: "Cuaca ekstrem",
    IncidentKind.ALERT: "Laporan",
}
SEVERITY_ID = {
    Severity.INFO: "info",
    Severity.LOW: "rendah",
    Severity.MEDIUM: "sedang",
    Severity.HIGH: "tinggi",
    Severity.CRITICAL: "kritis",
}
ZONES = {"Asia/Jakarta": ("WIB", 7), "Asia/Makassar": ("WITA", 8), "Asia/Jayapura": ("WIT", 9)}


@dataclass(frozen=True)
class Notice:
    opd_id: str
    opd_name: str
    incidents: tuple[Incident, ...]
    step: int  # 0: first notice; 1, 2, ...: escalations
    base_url: str
    timezone: str = "Asia/Makassar"
    reason: str = ""  # why it is sent again, when not an unanswered deadline (an SLA breach)

    def link(self, incident: Incident, suffix: str = "") -> str:
        return f"{self.base_url.rstrip('/')}/incident/{incident.id}{suffix}"

    def api_link(self, incident: Incident, suffix: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/incidents/{incident.id}/{suffix}"

    def local(self, at: datetime) -> str:
        return self.local_time(at, self.timezone)

    @staticmethod
    def local_time(at: datetime, zone: str) -> str:
        label, hours = ZONES.get(zone, ("WITA", 8))
        return f"{at.astimezone(timezone(timedelta(hours=hours))):%d/%m %H:%M} {label}"

    @property
    def subject(self) -> str:
        first = self.incidents[0]
        prefix = "[SLA] " if self.reason else ("[ESKALASI] " if self.step else "")
        place = first.kecamatan or first.camera_id or "-"
        if len(self.incidents) == 1:
            return f"{prefix}[Pantau] {KIND_ID[first.kind]} di {place}: {first.title}"
        kind = KIND_ID[first.kind].lower()
        return f"{prefix}[Pantau] {len(self.incidents)} insiden {kind} di {place}"

    def describe(self, inc: Incident) -> str:
        where = ", ".join(p for p in (inc.desa, inc.kecamatan) if p) or "-"
        lines = [
            f"{KIND_ID[inc.kind]} - {inc.title}",
            f"Tingkat: {SEVERITY_ID[inc.severity]}  Lokasi: {where}"
            + (f"  Kamera: {inc.camera_id}" if inc.camera_id else ""),
            f"Mulai: {self.local(inc.started_at)}"
            + (f"  Jumlah puncak: {inc.peak_count}" if inc.peak_count else "")
            + (f"  Level: {inc.level}" if inc.level else ""),
            f"Sumber: {', '.join(f'{s.kind}:{s.name}' for s in inc.sources) or '-'}",
            f"Buka: {self.link(inc)}",
        ]
        if inc.snapshot_ref:
            lines.append(f"Foto: {self.api_link(inc, 'snapshot.jpg')}")
        if inc.camera_id:
            lines.append(f"Klip: {self.api_link(inc, 'clip.mp4')} (tersedia setelah kejadian)")
        return "\n".join(lines)

    @property
    def text(self) -> str:
        head = f"Kepada {self.opd_name}:"
        if self.reason:
            head += f" {self.reason}. Mohon segera ditindaklanjuti."
        elif self.step:
            head += f" BELUM ADA TANGGAPAN (eskalasi ke-{self.step}). Mohon segera ditanggapi."
        body = "\n\n".join(self.describe(i) for i in self.incidents)
        return f"{head}\n\n{body}\n\nMohon konfirmasi (acknowledge) melalui tautan di atas."

    def payload(self) -> dict[str, object]:
        return {
            "type": "pantau.notice",
            "opd": self.opd_id,
            "escalation_step": self.step,
            "reason": self.reason or None,
            "subject": self.subject,
            "incidents": [
                {
                    **inc.model_dump(mode="json"),
                    "url": self.link(inc),
                    "snapshot_url": self.api_link(inc, "snapshot.jpg")
                    if inc.snapshot_ref
                    else None,
                    "clip_url": self.api_link(inc, "clip.mp4") if inc.camera_id else None,
                    "ack_url": self.api_link(inc, "actions"),
                }
                for inc in self.incidents
            ],
        }
