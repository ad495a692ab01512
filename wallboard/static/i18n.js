// UI strings: Bahasa Indonesia by default, English as a switch.
export const STRINGS = {
  id: {
    connected: "Terhubung", disconnected: "Terputus", incidents: "Kejadian", cameras: "Kamera",
    mute: "Suara: nyala", unmute: "Suara: mati", no_incidents: "Tidak ada kejadian aktif",
    active: "Aktif", ended: "Berakhir", people: "orang", peak: "puncak", threshold: "ambang",
    started: "Mulai", ended_at: "Berakhir", routed: "Diteruskan ke", close: "Tutup",
    no_frame: "Menunggu gambar…", clip_pending: "Klip dibuat setelah kejadian berakhir",
    no_clip: "Tidak ada rekaman untuk kejadian ini", camera_state: {
      starting: "Memulai", online: "Online", reconnecting: "Menyambung ulang", offline: "Offline",
      stopped: "Berhenti" },
    kind: { crowd: "Kerumunan", traffic: "Kemacetan", flood: "Banjir", tamper: "Sabotase kamera",
      offline: "Kamera mati", alert: "Laporan" },
    level: { lancar: "lancar", padat: "padat", macet: "macet" },
    cause: { black: "Gambar hitam", covered: "Lensa tertutup", defocus: "Gambar kabur",
      moved: "Arah kamera berubah", frozen: "Gambar membeku" },
    severity: { info: "Info", low: "Rendah", medium: "Sedang", high: "Tinggi", critical: "Kritis" },
    state: { new: "Baru", acknowledged: "Diterima", in_progress: "Ditangani", resolved: "Selesai",
      false_alarm: "Alarm palsu" },
  },
  en: {
    connected: "Connected", disconnected: "Disconnected", incidents: "Incidents", cameras: "Cameras",
    mute: "Sound: on", unmute: "Sound: off", no_incidents: "No active incidents",
    active: "Active", ended: "Ended", people: "people", peak: "peak", threshold: "threshold",
    started: "Started", ended_at: "Ended", routed: "Routed to", close: "Close",
    no_frame: "Waiting for video…", clip_pending: "The clip is cut when the incident ends",
    no_clip: "No recording for this incident", camera_state: {
      starting: "Starting", online: "Online", reconnecting: "Reconnecting", offline: "Offline",
      stopped: "Stopped" },
    kind: { crowd: "Crowd", traffic: "Traffic jam", flood: "Flood", tamper: "Camera tamper",
      offline: "Camera offline", alert: "Report" },
    level: { lancar: "flowing", padat: "dense", macet: "jammed" },
    cause: { black: "Black picture", covered: "Lens covered", defocus: "Out of focus",
      moved: "Camera moved", frozen: "Picture frozen" },
    severity: { info: "Info", low: "Low", medium: "Medium", high: "High", critical: "Critical" },
    state: { new: "New", acknowledged: "Acknowledged", in_progress: "In progress",
      resolved: "Resolved", false_alarm: "False alarm" },
  },
};

// Indonesian zone abbreviations for the operator's clock and times.
export const ZONE_LABEL = { "Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT" };
