// The wall page: tiles from the layout, an incident timeline fed by the WebSocket hub.
import { STRINGS, ZONE_LABEL } from "/static/i18n.js";
import { TileStream } from "/static/tiles.js";
import { openManage } from "/static/manage.js";
import { openEditor } from "/static/editor.js";
import { openLabels } from "/static/labels.js";

const state = {
  lang: localStorage.getItem("pantau.lang") || null,
  muted: localStorage.getItem("pantau.muted") === "1",
  ui: { title: "", timezone: "Asia/Jakarta", language: "id" },
  cameras: new Map(),      // id -> {id, name, kecamatan, desa}
  health: new Map(),       // id -> CameraStatus
  activity: new Set(),     // camera ids with motion now (smart streaming plays them live)
  streams: new Map(),      // camera id -> TileStream of its tile
  opds: [],                // [{id, name}] from the configuration
  kecamatan: [],           // the regency's kecamatan names
  people: null,            // who incidents can be assigned to (operators and above)
  fps: new Map(),          // camera id -> input fps now (hub, every 5 s)
  decode: new Map(),       // camera id -> {mode: full | keyframes, fps: decoded per second}
  bestFps: new Map(),      // camera id -> best input fps seen (to tell a choppy camera)
  incidents: new Map(),    // id -> Incident
  clips: new Map(),        // incident id -> ClipRef
  disk: null,              // the server's disk: {free_mb, full, low} (hub, as it changes)
  dead: new Map(),         // delivery id -> Delivery that gave up (shown until acknowledged)
  detailId: null,          // incident shown in the dialog
  me: null,                // {username, role, display_name, opd_id, can: [actions]}
  filter: { kind: "", state: "", kecamatan: "", opd: "" },
  scores: [],              // this week's OPD response scoreboard rows
  duty: [],                // who is on duty now per OPD (/api/duty)
  report: null,            // last week's OPD report figures (leaders, supervisors, OPDs)
  workers: [],             // the worker boxes of a scaled-out site (none: one process)
  wall: null,
  layout: "2x2",           // of the view the wall shows now (its own, or a preset)
  view: null,              // {wall, preset, by, at} from the hub
  order: [],               // camera ids in tile order; order[0] is the focus tile
  seq: null,
  backoff: 500,
};

const $ = (sel) => document.querySelector(sel);
const t = (key) => STRINGS[state.lang][key] ?? key;
const tk = (group, key) => (STRINGS[state.lang][group] || {})[key] ?? key;

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const locale = state.lang === "id" ? "id-ID" : "en-GB";
  const s = d.toLocaleTimeString(locale,
    { timeZone: state.ui.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit" });
  // Not today (in the operator's zone): say which day, or 14.00 reads as later than 05.13.
  const day = (x) => x.toLocaleDateString("en-CA", { timeZone: state.ui.timezone });
  const date = day(d) === day(new Date()) ? ""
    : d.toLocaleDateString(locale, { timeZone: state.ui.timezone, day: "2-digit", month: "short" }) + " ";
  return `${date}${s} ${ZONE_LABEL[state.ui.timezone] || ""}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

// replaceChildren() with the optional parts left out: the DOM would write null as "null".
function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c != null));
}

// ---- sound ------------------------------------------------------------------------------
let audio = null;
function beep() {
  if (state.muted) return;
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, f] of [[0, 880], [0.25, 660], [0.5, 880]]) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f; o.connect(g); g.connect(audio.destination);
      g.gain.setValueAtTime(0.2, now + i); g.gain.exponentialRampToValueAtTime(0.001, now + i + 0.22);
      o.start(now + i); o.stop(now + i + 0.23);
    }
  } catch (e) { /* autoplay policy: sound starts after the first click */ }
}

// ---- rendering --------------------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#lang").textContent = state.lang === "id" ? "EN" : "ID";
  $("#mute").textContent = state.muted ? t("unmute") : t("mute");
  $("#logout").textContent = t("logout");
  renderViewPicker();
  renderAll();
}

function activeIncidentFor(cameraId) {
  let best = null;
  for (const inc of state.incidents.values()) {
    if (inc.camera_id === cameraId && inc.active && (!best || inc.started_at > best.started_at)) best = inc;
  }
  return best;
}

function incidentSummary(inc) {
  if (inc.kind === "crowd" && inc.current_count != null) {
    return `${tk("kind", inc.kind)} · ${inc.active ? inc.current_count : inc.peak_count} ${t("people")}`;
  }
  if (inc.level) return `${tk("kind", inc.kind)} · ${tk("level", inc.level)}`;
  return inc.cause ? `${tk("kind", inc.kind)} · ${tk("cause", inc.cause)}` : tk("kind", inc.kind);
}

function renderGrid() {
  const grid = $("#grid");
  const layout = state.layout;
  grid.dataset.layout = layout;
  const existing = new Map([...grid.children].map((n) => [n.dataset.camera, n]));
  const wanted = state.order.slice(0, { "1x1": 1, "2x2": 4, "3x3": 9, "4x4": 16 }[layout] || 4);
  wanted.forEach((id, index) => {
    let tile = existing.get(id);
    if (!tile) {
      const video = el("video", { muted: "", autoplay: "", playsinline: "" });
      video.muted = true;  // the attribute alone does not satisfy every autoplay policy
      tile = el("figure", { class: "tile", dataset: { camera: id, mode: "off" } },
        el("img", { alt: "" }), video,
        el("figcaption", {}, el("span", { class: "cam-name" }), el("span", { class: "cam-alert" })),
        el("div", { class: "overlay" }));
      state.streams.set(id, new TileStream(tile, id, { idleRefreshS: state.ui.idle_refresh_s || 10 }));
    }
    existing.delete(id);
    if (grid.children[index] !== tile) grid.insertBefore(tile, grid.children[index] || null);
    const cam = state.cameras.get(id) || { name: id };
    const health = state.health.get(id);
    const inc = activeIncidentFor(id);
    tile.classList.toggle("alarm", !!inc);
    tile.classList.toggle("focus", index === 0 && !!inc);
    tile.querySelector(".cam-name").textContent = `${cam.name}${cam.kecamatan ? " · " + cam.kecamatan : ""}`;
    tile.querySelector(".cam-alert").textContent = inc ? incidentSummary(inc) : "";
    const down = health && health.state !== "online";
    tile.classList.toggle("down", !!down);
    tile.querySelector(".overlay").textContent = down ? tk("camera_state", health.state) : "";
  });
  for (const stale of existing.values()) {
    state.streams.get(stale.dataset.camera)?.stopAll();
    state.streams.delete(stale.dataset.camera);
    stale.remove();
  }
  updateStreams();
}

// Smart streaming (as Frigate): tiles with motion, an open incident or the focus play live
// video; quiet tiles show a still refreshed every idle_refresh_s. The phone layout hides the
// grid and so streams nothing.
function updateStreams() {
  const hidden = getComputedStyle($("#grid")).display === "none";
  const policy = state.ui.streaming || "smart";
  state.order.forEach((id, index) => {
    const stream = state.streams.get(id);
    if (!stream) return;
    const camDown = (state.health.get(id) || {}).state === "offline";
    const busy = index === 0 || !!activeIncidentFor(id) || state.activity.has(id);
    let mode = policy === "live" || busy ? "live" : "idle";
    if (policy === "mjpeg") stream.noWebrtc = true;  // "live" is then MJPEG
    if (hidden) mode = "off"; else if (camDown) mode = "idle";
    stream.want(mode);
  });
}

function renderTimeline() {
  const list = $("#timeline");
  list.replaceChildren();
  const f = state.filter;
  const items = [...state.incidents.values()]
    .filter((i) => (!f.kind || i.kind === f.kind) && (!f.state || i.state === f.state)
      && (!f.kecamatan || i.kecamatan === f.kecamatan) && (!f.opd || (i.routed_opds || []).includes(f.opd)))
    .sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
  renderFilters();
  const open = items.filter((i) => i.active).length;
  $("#open-count").textContent = String(open);
  if (!items.length) list.append(el("li", { class: "empty" }, t("no_incidents")));
  for (const inc of items.slice(0, 100)) {
    // Not of a camera (a worker box lost, a citizen's report): its title says what it is.
    const cam = state.cameras.get(inc.camera_id) || { name: inc.camera_id || inc.title || "" };
    const count = inc.kind === "crowd" && inc.current_count != null
      ? `${inc.active ? inc.current_count : inc.peak_count} ${t("people")}`
      : (inc.level ? tk("level", inc.level) : (inc.cause ? tk("cause", inc.cause) : ""));
    list.append(el("li", {
      class: `incident sev-${inc.severity} ${inc.active ? "is-active" : "is-ended"}`,
      dataset: { incident: inc.id, kind: inc.kind }, tabindex: "0",
      onclick: () => showDetail(inc.id),
    },
    el("div", { class: "row1" },
      el("span", { class: "kind" }, tk("kind", inc.kind)),
      el("span", { class: "sev" }, tk("severity", inc.severity)),
      el("time", {}, fmtTime(inc.started_at))),
    el("div", { class: "row2" }, [cam.name || sourceNames(inc), inc.desa, inc.kecamatan]
      .filter(Boolean).join(" · ")),
    el("div", { class: "row3" },
      el("span", {}, count),
      el("span", { class: "badge" }, inc.active ? t("active") : t("ended")),
      el("span", { class: "badge" }, tk("state", inc.state)),
      inc.exercise ? el("span", { class: "badge exercise" }, t("exercise")) : null,
      inc.sources && inc.sources.length > 1
        ? el("span", { class: "badge" }, `${inc.sources.length} ${t("sources")}`) : null)));
  }
}

function renderFilters() {
  // Options come from what is on the timeline, so a filter never offers an empty choice.
  const all = [...state.incidents.values()];
  const options = {
    kind: [...new Set(all.map((i) => i.kind))].map((v) => [v, tk("kind", v)]),
    state: [...new Set(all.map((i) => i.state))].map((v) => [v, tk("state", v)]),
    kecamatan: [...new Set(all.map((i) => i.kecamatan).filter(Boolean))].map((v) => [v, v]),
    opd: [...new Set(all.flatMap((i) => i.routed_opds || []))].map((v) => [v, v]),
  };
  for (const [key, opts] of Object.entries(options)) {
    const select = document.querySelector(`#filters select[name=${key}]`);
    if (!select) continue;
    const current = state.filter[key];
    select.replaceChildren(el("option", { value: "" }, tk("filter", key)),
      ...opts.sort((a, b) => a[1].localeCompare(b[1])).map(([v, label]) => el("option", { value: v }, label)));
    select.value = current;
  }
}

function fmtDuration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 90) return `${Math.round(seconds)} ${t("sec")}`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} ${t("min")}`;
  return `${(seconds / 3600).toFixed(1)} ${t("hour")}`;
}

function renderScores() {
  const body = $("#scores tbody");
  if (!body) return;
  body.replaceChildren();
  const week = state.scores.length ? state.scores[state.scores.length - 1].week : null;
  const rows = state.scores.filter((r) => r.week === week);
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "—")));
  for (const r of rows) {
    const breaches = (r.ack_breaches || 0) + (r.resolve_breaches || 0);
    body.append(el("tr", { dataset: { opd: r.opd_id } },
      el("td", {}, r.opd_id),
      el("td", {}, fmtDuration(r.ack_p50_s)),
      el("td", {}, fmtDuration(r.ack_p90_s)),
      el("td", { class: breaches ? "warn" : "", title: `${t("breaches")}: ${breaches}` },
        r.sla_ack_pct == null ? "—" : `${r.sla_ack_pct}%${breaches ? ` (${breaches}!)` : ""}`),
      el("td", { class: r.unanswered ? "warn" : "" }, `${r.unanswered}/${r.routed}`)));
  }
}

function hhmm(iso) {
  if (!iso) return "";
  const locale = state.lang === "id" ? "id-ID" : "en-GB";
  return new Date(iso).toLocaleTimeString(locale, { timeZone: state.ui.timezone, hour: "2-digit", minute: "2-digit" });
}

// Who is on duty per OPD: the piket from the roster (with the shift's end), or the contact
// that hears first where the OPD has no roster. Phones are links (a tap calls on a phone).
function renderDuty() {
  const list = $("#duty");
  if (!list) return;
  const off = state.duty.length ? state.duty[0].day_off : "";
  $("#day-off").hidden = !off;
  $("#day-off").textContent = off;
  list.replaceChildren(...state.duty.map((d) => {
    const people = d.on_duty.length ? d.on_duty : [d.first_contact];
    return el("li", { dataset: { opd: d.opd_id } },
      el("b", {}, d.opd_name), " ",
      ...people.map((p) => el("span", { class: "person" }, p.name,
        p.phone ? el("a", { class: "tel", href: `tel:${p.phone.replace(/[^+0-9]/g, "")}` }, ` ☎ ${p.phone}`) : null,
        p.shift ? el("span", { class: "muted" }, ` · ${p.shift} ${t("duty_until")} ${hhmm(p.ends)}`)
          : el("span", { class: "muted" }, ` · ${t(d.on_duty.length ? "first_contact" : "no_roster")}`))));
  }));
}

// Last week's OPD report, in short: per OPD incidents, SLA met and breaches, with the PDF and
// the full report (charts) a tap away. Shown to those the report is for (leaders on a phone).
const REPORT_ROLES = ["viewer", "supervisor", "admin", "opd"];

function renderReport() {
  const box = $("#report");
  const r = state.report;
  box.hidden = !r;
  if (!r) return;
  $("#report-week").textContent = r.week;
  box.querySelector("tbody").replaceChildren(...r.opds.map((o) => el("tr", { dataset: { opd: o.opd_id } },
    el("td", {}, o.opd_name), el("td", {}, `${o.routed}`),
    el("td", {}, o.sla_ack_pct == null ? "—" : `${o.sla_ack_pct}%`),
    el("td", { class: o.ack_breaches + o.resolve_breaches ? "warn" : "" }, `${o.ack_breaches + o.resolve_breaches}`))));
  const base = `/api/reports/${r.week}`;
  box.querySelector(".report-links").replaceChildren(
    el("a", { class: "btn", href: `${base}/report.pdf`, download: "" }, t("report_pdf")), " ",
    el("button", { class: "btn", type: "button", onclick: () => openReport(r) }, t("report_open")));
}

function openReport(r) {
  const dlg = $("#detail");
  state.detailId = null;
  dlg.dataset.incident = "";
  const base = `/api/reports/${r.week}`;
  fill(dlg,
    el("h3", {}, `${t("report")} · ${t("report_week")} ${r.week}`),
    el("img", { class: "report-chart", src: `${base}/chart.png?page=0`, alt: t("report") }),
    el("img", { class: "report-chart", src: `${base}/chart.png?page=1`, alt: t("report_trend") }),
    el("p", {}, el("a", { class: "btn", href: `${base}/report.pdf`, download: "" }, t("report_pdf"))),
    el("button", { class: "btn close", onclick: () => dlg.close() }, t("close")));
  if (!dlg.open) dlg.showModal();
}

async function loadReport() {
  if (!state.me || !REPORT_ROLES.includes(state.me.role)) return;
  const index = await getJson("/api/reports", null);
  state.report = index ? await getJson(`/api/reports/${index.last_week}`, null) : null;
  renderReport();
}

async function loadDuty() {
  state.duty = await getJson("/api/duty", []);
  renderDuty();
}

// SLA clocks of an incident per OPD: due times, met or breached.
function slaBadges(clocks, opd) {
  const c = clocks.find((x) => x.opd_id === opd);
  if (!c) return [];
  const out = [];
  for (const [key, due, done, breached] of [["sla_ack", c.ack_due, c.acknowledged_at, c.ack_breached_at],
    ["sla_resolve", c.resolve_due, c.resolved_at, c.resolve_breached_at]]) {
    if (!due) continue;
    const cls = breached ? "sla-breached" : done ? "sla-met" : "sla-running";
    const word = breached ? t("sla_breached") : done ? t("sla_met") : `${t("sla_due")} ${fmtTime(due)}`;
    out.push(el("span", { class: `badge ${cls}`, dataset: { sla: key } }, `${t("sla")} ${t(key)}: ${word}`));
  }
  return out;
}

async function loadScores() {
  state.scores = await getJson("/api/scoreboard?weeks=1", []);
  renderScores();
}

function sourceNames(inc) {
  return (inc.sources || []).map((s) => `${tk("source", s.kind)} ${s.name}`).join(", ");
}

// The server's disk: full (nothing new can be stored, OPD reports are refused with 503) or low.
function renderDisk() {
  const badge = $("#disk");
  const d = state.disk;
  badge.hidden = !d || !(d.full || d.low);
  if (badge.hidden) return;
  badge.dataset.level = d.full ? "full" : "low";
  badge.textContent = d.full ? `⚠ ${t("disk_full")}` : `${t("disk_low")} · ${Math.round(d.free_mb)} MB`;
}

function renderDead() {
  const badge = $("#dead");
  badge.hidden = state.dead.size === 0;
  badge.textContent = `⚠ ${state.dead.size} ${t("dead_deliveries")}`;
  badge.title = [...state.dead.values()]
    .map((d) => `${d.opd_id} · ${d.channel} ${d.target}: ${d.error || ""}`).join("\n");
}

function renderHealth() {
  const list = $("#health");
  list.replaceChildren();
  for (const cam of state.cameras.values()) {
    const h = state.health.get(cam.id);
    const st = h ? h.state : "starting";
    // Tampered (or video loss) is an incident of the camera; choppy is a camera that delivers
    // far fewer frames than it did at its best since this page opened.
    const fault = [...state.incidents.values()].find((i) => i.active && i.camera_id === cam.id
      && (i.kind === "tamper" || i.kind === "offline"));
    const fps = state.fps.get(cam.id) ?? (h && h.input_fps ? h.input_fps : 0);
    state.bestFps.set(cam.id, Math.max(state.bestFps.get(cam.id) || 0, fps));
    const choppy = st === "online" && state.bestFps.get(cam.id) >= 4 && fps < state.bestFps.get(cam.id) / 2;
    const cls = fault ? "cam-offline" : choppy ? "cam-reconnecting" : `cam-${st}`;
    const what = fault ? (fault.cause ? tk("cause", fault.cause) : tk("kind", fault.kind))
      : choppy ? `${t("choppy")} · ${fps.toFixed(1)} fps`
      : st === "online" && fps ? `${tk("camera_state", st)} · ${fps.toFixed(0)} fps` : tk("camera_state", st);
    const where = h && h.worker && state.workers.length ? ` · ${t("on_worker")} ${h.worker}` : "";
    // A quiet camera decodes keyframes only (it saves the box's CPU); say so, with the rate.
    const dec = (state.decode || new Map()).get(cam.id);
    const quiet = dec && dec.mode === "keyframes" && st === "online" && !fault
      ? el("span", { class: "decode-quiet", title: `${dec.fps} fps` }, ` · ${t("decode_quiet")}`) : null;
    // A rule of this camera that cries wolf: its share of false alarms (staff see it).
    const wolf = (state.honesty || []).filter((r) => r.camera_id === cam.id && r.share_7d)
      .sort((a, b) => b.share_7d - a.share_7d)[0];
    list.append(el("li", { class: cls, dataset: { camera: cam.id, fault: fault ? fault.kind : choppy ? "choppy" : "" } },
      el("span", { class: "dot" }), el("span", { class: "name" }, cam.name),
      el("span", { class: "st" }, what + where), quiet,
      wolf ? el("span", { class: `fa-share${wolf.flagged ? " warn" : ""}`, dataset: { rule: wolf.rule },
        title: `${wolf.rule}: ${wolf.false_alarms_7d}/${wolf.incidents_7d}` },
      ` · ${t("fa_short")} ${Math.round(wolf.share_7d * 100)}%`) : null));
  }
}

async function loadHonesty() {
  if (!state.me || !["operator", "supervisor", "admin", "viewer"].includes(state.me.role)) return;
  state.honesty = await getJson("/api/false-alarms", []);
  renderHealth();
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return `${fmtDuration(s)} ${t("ago")}`;
}

// The worker boxes (scaled out): what each holds and how it is doing. A lost box is red and
// first: its cameras are being taken over, and a "worker lost" incident is open for it.
function renderWorkers() {
  const list = $("#workers");
  const shown = state.workers.length > 0;
  list.hidden = !shown;
  $("#workers-title").hidden = !shown;
  const order = { lost: 0, running: 1, stopped: 2 };
  const sorted = [...state.workers].sort((a, b) => (order[a.state] - order[b.state]) || a.name.localeCompare(b.name));
  list.replaceChildren(...sorted.map((w) => {
    const cls = w.state === "running" ? "cam-online" : w.state === "lost" ? "cam-offline" : "cam-stopped";
    const held = w.cameras.length + (w.capacity ? `/${w.capacity}` : "");
    const facts = w.state === "running"
      ? `${held} ${t("n_cameras")} · ${w.detector_fps.toFixed(1)} ${t("detect_fps")} · CPU ${w.cpu_percent.toFixed(0)}%`
      : `${tk("worker_state", w.state)} · ${ago(w.at)}`;
    const names = w.cameras.map((c) => (state.cameras.get(c.camera_id) || { name: c.camera_id }).name);
    return el("li", { class: cls, dataset: { worker: w.name, state: w.state, cameras: String(w.cameras.length) },
      title: `${w.host} · pid ${w.pid} · ${ago(w.at)}\n${names.join(", ")}` },
      el("span", { class: "dot" }), el("span", { class: "name" }, w.name),
      el("span", { class: "st" }, facts));
  }));
}

// One process has no workers (an empty list): ask once. Scaled out, keep the panel fresh at
// the workers' heartbeat pace; it is staff-only (403 for OPD users: no panel).
async function loadWorkers() {
  if (!state.me || state.me.role === "opd") return;
  state.workers = await getJson("/api/workers", state.workers);  // Redis away: keep the last
  renderWorkers();
  if (state.workers.length) setTimeout(loadWorkers, 3000);
}

// The kecamatan schematic: one tile per kecamatan with its open incidents (coloured by the
// worst severity) and a dot per camera; a tile filters the timeline to its kecamatan.
const SEVERITY_ORDER = ["info", "low", "medium", "high", "critical"];
function renderMap() {
  const box = $("#map");
  const names = [...new Set([...state.kecamatan,
    ...[...state.cameras.values()].map((c) => c.kecamatan),
    ...[...state.incidents.values()].map((i) => i.kecamatan)].filter(Boolean))];
  box.replaceChildren(...names.map((name) => {
    const open = [...state.incidents.values()].filter((i) => i.active && i.kecamatan === name);
    const worst = open.reduce((w, i) => Math.max(w, SEVERITY_ORDER.indexOf(i.severity)), -1);
    const cams = [...state.cameras.values()].filter((c) => c.kecamatan === name);
    const tile = el("button", { class: "kec", type: "button", role: "listitem",
      dataset: { kecamatan: name, severity: worst >= 0 ? SEVERITY_ORDER[worst] : "none" },
      "aria-pressed": String(state.filter.kecamatan === name),
      onclick: () => {
        state.filter.kecamatan = state.filter.kecamatan === name ? "" : name;
        renderTimeline(); renderMap();
      } },
      el("span", { class: "kec-name" }, name),
      el("span", { class: "kec-count" }, open.length ? `${open.length} ${t("open_short")}` : "✓"),
      el("span", { class: "kec-cams" }, ...cams.map((c) => {
        const st = (state.health.get(c.id) || {}).state || "starting";
        const alarm = activeIncidentFor(c.id) ? " alarm" : "";
        return el("span", { class: `cam-dot cam-${st}${alarm}`, title: c.name });
      })));
    return tile;
  }));
}

function renderAll() {
  renderGrid(); renderTimeline(); renderMap(); renderHealth(); renderDead(); renderScores(); renderDuty(); renderWorkers();
}

async function getJson(url, fallback) {
  try {
    const res = await fetch(url);
    return res.ok ? await res.json() : fallback;
  } catch (e) { return fallback; }
}

function deliveryList(inc, deliveries, actions, clocks = []) {
  // The latest outcome per OPD and channel: what the operator needs is "did they get it?"
  const latest = new Map();
  for (const d of deliveries) {
    const key = `${d.opd_id}|${d.channel}|${d.target}`;
    if (!latest.has(key) || latest.get(key).at < d.at) latest.set(key, d);
  }
  const items = (inc.routed_opds || []).map((opd) => {
    const mine = [...latest.values()].filter((d) => d.opd_id === opd);
    return el("li", {}, el("b", {}, opd), " ",
      mine.length ? mine.map((d) => el("span", { class: `badge dlv-${d.status}` },
        `${d.channel}: ${tk("delivery", d.status)}${d.attempts > 1 ? ` (${d.attempts}×)` : ""}`))
        : el("span", { class: "muted" }, lastNote(actions, opd) || t("not_sent_yet")),
      ...slaBadges(clocks, opd));
  });
  return items.length ? el("ul", { class: "deliveries" }, ...items) : el("p", { class: "muted" }, "—");
}

function lastNote(actions, opd) {
  // Why nothing was delivered: muted (silence, inhibition, duplicate) or no channel set up.
  const hit = actions.filter((a) => a.opd_id === opd && ["notified", "muted"].includes(a.kind)).pop();
  return hit ? `${tk("action", hit.kind)}: ${hit.note}` : null;
}

function activityList(actions) {
  return el("ol", { class: "activity" }, ...actions.slice(-30).map((a) => el("li", {},
    el("time", {}, fmtTime(a.at)), " ", el("b", {}, tk("action", a.kind)), " ",
    `${a.actor}${a.opd_id && a.actor === "system" ? " → " + a.opd_id : ""}${a.note ? ": " + a.note : ""}`)));
}

const ACTIONS_FOR_STATE = {
  new: ["acknowledge", "start", "resolve", "false_alarm"],
  acknowledged: ["start", "resolve", "false_alarm"],
  in_progress: ["resolve", "false_alarm"],
  resolved: ["reopen"],
  false_alarm: ["reopen"],
};

function actionBar(inc, keep) {
  const can = new Set((state.me && state.me.can) || []);
  // An update of the incident re-renders the dialog: what the operator is typing stays.
  const note = keep.note || el("input", { class: "note", type: "text", maxlength: "4000", placeholder: t("note_placeholder") });
  const buttons = (ACTIONS_FOR_STATE[inc.state] || []).filter((a) => can.has(a)).map((kind) =>
    el("button", { class: `btn act act-${kind}`, dataset: { action: kind }, onclick: () => act(inc.id, kind, note.value) },
      tk("do", kind)));
  if (can.has("comment")) {
    buttons.push(el("button", { class: "btn act", dataset: { action: "comment" },
      onclick: () => note.value.trim() && act(inc.id, "comment", note.value) }, tk("do", "comment")));
  }
  const picker = can.has("assign") && inc.active ? assignPicker(inc, note, keep.pick) : null;
  if (!buttons.length && !picker) return null;
  return el("div", { class: "actions" }, note, ...buttons, picker);
}

function ownerName(owner) {
  if (!owner) return t("nobody");
  const person = (state.people || []).find((p) => p.username === owner);
  const opd = state.opds.find((o) => o.id === owner);
  return person ? person.display_name : opd ? opd.name : owner;
}

// Assign: a colleague (from /api/people) or an OPD, as a list to pick from.
function assignPicker(inc, note, picked) {
  const options = [el("option", { value: "" }, `${t("owner")}…`),
    ...(state.people || []).map((p) => el("option", { value: p.username },
      `${p.display_name} (${tk("roles", p.role)}${p.opd_id ? " · " + p.opd_id : ""})`)),
    ...state.opds.map((o) => el("option", { value: o.id }, `OPD · ${o.name}`))];
  const pick = el("select", { class: "owner-pick", "aria-label": t("owner") }, ...options);
  pick.value = picked || inc.owner || "";
  const go = el("button", { class: "btn act", dataset: { action: "assign" },
    onclick: () => pick.value && act(inc.id, "assign", note.value, pick.value) }, tk("do", "assign"));
  return el("span", { class: "assign" }, pick, go);
}

async function act(id, kind, note, owner) {
  const res = await fetch(`/api/incidents/${encodeURIComponent(id)}/actions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind, note: note || "", ...(owner ? { owner } : {}) }),
  });
  if (res.ok) {
    const typed = $("#detail input.note");
    if (typed) typed.value = "";  // said: it is in the activity log now
    state.incidents.set(id, await res.json());
    renderAll();
    showDetail(id, true);
  } else {
    const body = await res.json().catch(() => ({}));
    alert(`${res.status}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`);
  }
}

// `refresh`: re-render the incident already shown, never reopen a dialog the operator closed
// while the answer was on its way (nor one that has moved on to another incident).
async function showDetail(id, refresh = false) {
  const dlg = $("#detail");
  const shown = () => state.detailId === id && (!refresh || dlg.open);
  if (refresh && !shown()) return;
  if (!state.incidents.get(id)) return;
  state.detailId = id;
  if (!state.clips.has(id)) {
    const res = await fetch(`/api/incidents/${encodeURIComponent(id)}/clip`);
    if (res.ok) state.clips.set(id, await res.json());
  }
  const base = `/api/incidents/${encodeURIComponent(id)}`;
  const [actions, deliveries, clocks, photos] = await Promise.all([
    getJson(`${base}/actions`, []), getJson(`${base}/deliveries`, []), getJson(`${base}/sla`, []),
    getJson(`${base}/attachments`, [])]);
  if (!shown()) return;
  const inc = state.incidents.get(id);
  const clip = state.clips.get(id);
  const cam = state.cameras.get(inc.camera_id) || { name: inc.camera_id || inc.kecamatan || "" };
  // Re-rendering the same incident (it was updated): keep the clip playing where it is, the
  // note being typed and the owner being picked, and the focus.
  const same = dlg.open && dlg.dataset.incident === id;
  // The close button too: a click landing while an update re-renders the dialog still counts.
  const keep = same ? { note: dlg.querySelector("input.note"), video: dlg.querySelector("video.clip"),
    pick: (dlg.querySelector("select.owner-pick") || {}).value, close: dlg.querySelector("button.close") } : {};
  const focused = document.activeElement;
  const clipUrl = `/api/incidents/${inc.id}/clip.mp4`;
  dlg.dataset.incident = id;
  fill(dlg,
    el("h3", {}, `${tk("kind", inc.kind)} · ${cam.name}`, inc.exercise
      ? el("span", { class: "badge exercise" }, t("exercise")) : null),
    el("p", { class: "title" }, inc.title),
    clip && keep.video && keep.video.getAttribute("src") === clipUrl ? keep.video
      : clip ? el("video", { class: "clip", src: clipUrl, controls: "",
        autoplay: "", muted: "", playsinline: "", poster: inc.snapshot_ref ? `/api/incidents/${inc.id}/snapshot.jpg` : "" })
      : (inc.snapshot_ref ? el("img", { class: "snap", src: `/api/incidents/${inc.id}/snapshot.jpg`, alt: "snapshot" }) : null),
    clip ? null : el("p", { class: "muted" }, inc.active ? t("clip_pending") : t("no_clip")),
    el("dl", {},
      el("dt", {}, t("started")), el("dd", {}, fmtTime(inc.started_at)),
      el("dt", {}, t("ended_at")), el("dd", {}, inc.ended_at ? fmtTime(inc.ended_at) : "—"),
      el("dt", {}, t("peak")), el("dd", {}, `${inc.peak_count ?? "—"} (${t("threshold")} ${inc.threshold ?? "—"})`),
      el("dt", {}, t("place")), el("dd", {}, [inc.desa, inc.kecamatan].filter(Boolean).join(", ") || "—"),
      el("dt", {}, t("owner")), el("dd", { class: "owner" }, ownerName(inc.owner)),
      el("dt", {}, t("sources")), el("dd", {}, el("ul", { class: "sources" }, ...(inc.sources || []).map((s) =>
        el("li", {}, el("b", {}, `${tk("source", s.kind)} ${s.name}`), ` ${s.summary}`,
          s.active ? null : el("span", { class: "muted" }, ` (${t("ended")})`)))))),
    el("h4", {}, t("routed")), deliveryList(inc, deliveries, actions, clocks),
    photos.length ? el("h4", {}, t("attachments")) : null,
    photos.length ? el("div", { class: "attachments" }, ...photos.map((p) => el("a", {
      href: `${base}/attachments/${p.id}`, target: "_blank", title: `${p.added_by} · ${fmtTime(p.at)}` },
    el("img", { src: `${base}/attachments/${p.id}`, alt: p.name, loading: "lazy" })))) : null,
    el("h4", {}, t("activity")), activityList(actions),
    actionBar(inc, keep),
    // An admin tries the camera's rules (as saved now) on this incident's clip.
    clip && inc.camera_id && state.me.role === "admin" ? el("button", { class: "btn", dataset: { do: "test-rules" },
      onclick: () => { dlg.close(); openEditor({ el, t, tk, cameras: state.cameras }, inc.camera_id, { incidentId: inc.id }); } },
    t("ed_test")) : null,
    // Supervisors and admins: this incident's snapshot as a label of its zone's state.
    inc.snapshot_ref && inc.camera_id && ["supervisor", "admin"].includes(state.me.role)
      ? el("button", { class: "btn", dataset: { do: "label-snapshot" }, onclick: () => { dlg.close();
        openLabels({ el, t, fmtTime, cameras: state.cameras }, { camera: inc.camera_id, zone: inc.zone_id, incident: inc.id }); } },
      t("lb_label_this")) : null,
    keep.close || el("button", { class: "btn close", onclick: () => dlg.close() }, t("close")));
  if (focused && focused !== document.body && dlg.contains(focused)) focused.focus();
  if (!dlg.open) dlg.showModal();
}

// ---- data -------------------------------------------------------------------------------
function focusCamera(cameraId) {
  if (!state.order.includes(cameraId)) state.order.push(cameraId);
  state.order = [cameraId, ...state.order.filter((c) => c !== cameraId)];
}

function onIncident(type, inc) {
  const isNew = type === "incident.opened" && !state.incidents.has(inc.id);
  state.incidents.set(inc.id, inc);
  if (isNew && inc.camera_id) { focusCamera(inc.camera_id); beep(); }
}

// ---- wall views (presets) ------------------------------------------------------------------
function applyView(view) {
  if (!state.wall || !view || view.wall !== state.wall.id) return;
  state.view = view;
  const preset = view.preset && (state.wall.presets || []).find((p) => p.id === view.preset);
  const shown = preset || state.wall;
  state.layout = shown.layout;
  state.order = shown.cameras.length ? [...shown.cameras] : [...state.cameras.keys()];
  // A trigger switched the wall for an incident: its camera takes the focus tile.
  const why = view.by.startsWith("incident:") && state.incidents.get(view.by.slice(9));
  if (why && why.active && why.camera_id) focusCamera(why.camera_id);
  renderViewPicker();
}

function renderViewPicker() {
  const select = $("#view");
  const presets = (state.wall && state.wall.presets) || [];
  select.hidden = !presets.length;
  if (!presets.length) return;
  const current = state.view && state.view.preset ? state.view.preset : "";
  const auto = state.view && state.view.by.startsWith("incident:") ? ` (${t("view_auto")})` : "";
  select.replaceChildren(
    el("option", { value: "" }, t("wall_own") + (current ? "" : auto)),
    ...presets.map((p) => el("option", { value: p.id }, (p.name || p.id) + (p.id === current ? auto : ""))));
  select.value = current;
  select.disabled = !state.me || !["operator", "supervisor", "admin"].includes(state.me.role);
}

async function chooseView() {
  const preset = $("#view").value || null;
  await fetch(`/api/walls/${encodeURIComponent(state.wall.id)}/view`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ preset }),
  });  // the hub's wall.view message switches this screen and every other one of the wall
}

function setActivity(ids) {
  state.activity = new Set(ids || []);
  updateStreams();
}

function handle(msg) {
  // Activity is a hint, not an event: unnumbered, and each heartbeat carries all of it.
  if (msg.type === "heartbeat") { if (msg.activity) setActivity(msg.activity); return; }
  if (msg.type === "camera.activity") { setActivity(msg.activity); return; }
  if (msg.type === "camera.rates") {
    state.fps = new Map(Object.entries(msg.fps));
    state.decode = new Map(Object.entries(msg.decode || {}));
    renderHealth(); return;
  }
  if (msg.type === "snapshot") {
    state.incidents = new Map(msg.incidents.map((i) => [i.id, i]));
    state.health = new Map(msg.cameras.map((c) => [c.camera_id, c]));
    state.activity = new Set(msg.activity || []);
    state.fps = new Map(Object.entries(msg.fps || {}));
    state.decode = new Map(Object.entries(msg.decode || {}));
    if (state.wall) applyView((msg.state || {})[`wall:${state.wall.id}`]);
    state.disk = (msg.state || {}).disk || null;
    renderDisk();
    state.seq = msg.seq;
    loadDead();
    renderAll();
    return;
  }
  if (state.seq !== null && msg.seq <= state.seq) return;  // already in the snapshot
  state.seq = msg.seq;
  if (msg.type === "wall.view") { applyView(msg); renderAll(); return; }
  if (msg.type === "system.disk") { state.disk = msg; renderDisk(); return; }
  if (msg.type === "config.changed") { configChanged(); return; }
  const ev = msg.event;
  if (["incident.opened", "incident.updated", "incident.closed"].includes(msg.type)) onIncident(msg.type, ev.incident);
  else if (msg.type === "camera.status") cameraStatus(ev.status);
  else if (msg.type === "clip.ready") state.clips.set(ev.clip.incident_id, ev.clip);
  else if (msg.type === "incident.action" && ["acknowledge", "start", "resolve", "routed"].includes(ev.action.kind)) {
    clearTimeout(state.scoreTimer);
    state.scoreTimer = setTimeout(loadScores, 1000);  // one reload for a burst of answers
  } else if (msg.type === "notification.delivery") {
    if (ev.delivery.status === "dead") state.dead.set(ev.delivery.id, ev.delivery);
    else state.dead.delete(ev.delivery.id);
  }
  const about = ev && (ev.incident ? ev.incident.id : ev.action ? ev.action.incident_id
    : ev.delivery ? ev.delivery.incident_id : null);
  if (about) showDetail(about, true);
  renderAll();
}

// Scaled out, a camera that moved to another worker comes from that worker now: its tile
// drops the stream of the old box (a WebRTC peer of a dead box would only fail after ~30 s).
function cameraStatus(status) {
  const before = state.health.get(status.camera_id);
  state.health.set(status.camera_id, status);
  if (before && before.lease_token !== status.lease_token && status.state === "online") {
    state.streams.get(status.camera_id)?.restart();
  }
}

async function loadDead() {
  const dead = await getJson("/api/deliveries?status=dead&hours=24", []);
  state.dead = new Map(dead.map((d) => [d.id, d]));
  renderDead();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const since = state.seq !== null ? `?since=${state.seq}` : "";
  const ws = new WebSocket(`${proto}://${location.host}/ws${since}`);
  ws.onopen = () => { state.backoff = 500; setConn(true); };
  ws.onmessage = (e) => handle(JSON.parse(e.data));
  ws.onclose = (e) => {
    setConn(false);
    if (e.code === 1008) { showLogin(); return; }  // session ended: log in again
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
  };
}

function setConn(ok) {
  const c = $("#conn");
  c.dataset.i18n = ok ? "connected" : "disconnected";
  c.textContent = t(c.dataset.i18n);
  c.className = `conn ${ok ? "conn-on" : "conn-off"}`;
  document.body.dataset.connected = ok ? "1" : "0";
}

function tick() { $("#clock").textContent = fmtTime(new Date().toISOString()); }

function showLogin(message) {
  const dlg = $("#login");
  state.lang = state.lang || "id";
  for (const node of dlg.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#login-error").textContent = message || "";
  if (!dlg.open) dlg.showModal();
}

async function login(ev) {
  ev.preventDefault();
  const res = await fetch("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("#login-user").value, password: $("#login-pass").value }),
  });
  if (res.ok) { location.reload(); return; }
  showLogin(res.status === 429 ? t("login_limited") : t("login_failed"));
}

async function logout() {
  await fetch("/api/logout", { method: "POST" });
  location.reload();
}

function applyConfig(cfg) {
  state.ui = cfg.ui;
  $("#site-title").textContent = cfg.ui.title;
  document.title = `Pantau · ${cfg.ui.title}`;
  state.cameras = new Map(cfg.cameras.map((cam) => [cam.id, cam]));
  state.opds = cfg.opds || [];
  state.kecamatan = cfg.kecamatan || [];
}

function pickWall(cfg) {
  const wallId = decodeURIComponent(location.pathname.split("/")[2] || "");
  state.wall = cfg.walls.find((w) => w.id === wallId)
    || (/^\d+$/.test(wallId) ? cfg.walls[Number(wallId) - 1] : null) || cfg.walls[0] || null;
  state.order = state.wall && state.wall.cameras.length ? [...state.wall.cameras] : [...state.cameras.keys()];
  state.layout = state.wall ? state.wall.layout : "2x2";
}

// cameras.yaml was reloaded: new cameras, names, walls. Tiles of cameras still shown keep
// their streams (renderGrid reuses them by camera id); the wall's current view then applies.
async function configChanged() {
  const cfg = await getJson("/api/ui", null);
  if (!cfg) return;
  applyConfig(cfg);
  pickWall(cfg);
  if (state.view) applyView(state.view);
  renderAll();
  loadDuty();  // rosters and the calendar may have changed
}

async function boot() {
  $("#login-form").addEventListener("submit", login);
  const who = await fetch("/api/me");
  if (who.status === 401) { showLogin(); return; }
  state.me = await who.json();
  $("#user").textContent = state.me.display_name + (state.me.opd_id ? ` · ${state.me.opd_id}` : "");
  $("#logout").addEventListener("click", logout);
  const res = await fetch("/api/ui");
  const cfg = await res.json();
  applyConfig(cfg);
  state.lang = state.lang || cfg.ui.language || "id";
  if (["operator", "supervisor", "admin"].includes(state.me.role)) state.people = await getJson("/api/people", []);
  const manage = $("#manage");
  manage.hidden = !["supervisor", "admin"].includes(state.me.role);
  manage.addEventListener("click", () => openManage({ el, t, tk, fmtTime, me: state.me,
    cameras: state.cameras, opds: state.opds, kecamatan: state.kecamatan }));
  const labelStates = $("#label-states");
  labelStates.hidden = !["supervisor", "admin"].includes(state.me.role);
  labelStates.addEventListener("click", () => openLabels({ el, t, fmtTime, cameras: state.cameras }));
  const editZones = $("#edit-zones");
  editZones.hidden = state.me.role !== "admin";
  editZones.addEventListener("click", () => openEditor({ el, t, tk, cameras: state.cameras }));
  pickWall(cfg);
  $("#view").addEventListener("change", chooseView);
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "id" ? "en" : "id";
    localStorage.setItem("pantau.lang", state.lang);
    applyLanguage();
  });
  $("#mute").addEventListener("click", () => {
    state.muted = !state.muted;
    localStorage.setItem("pantau.muted", state.muted ? "1" : "0");
    applyLanguage();
  });
  $("#detail").addEventListener("close", () => { state.detailId = null; });
  for (const select of document.querySelectorAll("#filters select")) {
    select.addEventListener("change", () => { state.filter[select.name] = select.value; renderTimeline(); });
  }
  loadScores(); setInterval(loadScores, 60000);
  loadDuty(); setInterval(loadDuty, 60000);  // shifts change on the minute
  loadReport(); setInterval(loadReport, 3600000);
  loadHonesty(); setInterval(loadHonesty, 300000);
  loadWorkers();
  applyLanguage();
  tick(); setInterval(tick, 1000);
  setInterval(updateStreams, 5000);  // ends the live hold of tiles that went quiet
  window.addEventListener("resize", updateStreams);  // phone <-> wall layout
  connect();
}

boot();
