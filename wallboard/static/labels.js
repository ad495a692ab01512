// "Label keadaan" (admins and supervisors): label a camera zone's look as one of its states
// (kering, tergenang, banjir, any names) with quick keys 1-9, from the camera now, from its
// recordings at a chosen time (each label steps on through the recording) or from an incident's
// snapshot, with the zone drawn over the picture; train the camera's own model and read its
// held-back accuracy per state before enabling it (or disabling it again). And the rules that
// cry wolf: false-alarm shares, flagged rules with their latest false alarms, each a "normal"
// label in one click. Everything goes through the same REST API.

async function call(method, url, body) {
  const res = await fetch(url, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : `${res.status}`);
  return data;
}

const DEFAULT_STATES = ["kering", "tergenang", "banjir"];

const SVG = "http://www.w3.org/2000/svg";
const pad = (n) => `${n}`.padStart(2, "0");
// <input type=datetime-local> speaks the browser's local time (the wall PC's: the site's).
const localValue = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

export async function openLabels(ctx, pick = {}) {
  const { el, t, cameras } = ctx;
  const fmtWhen = ctx.fmtTime || ((iso) => new Date(iso).toLocaleString());
  const dlg = document.querySelector("#labels");
  const camIds = [...cameras.keys()];
  let camera = pick.camera || camIds[0];
  let zones = [];
  let zone = pick.zone || null;
  let states = [...DEFAULT_STATES];
  let info = { labels: [], versions: [], enabled: null };
  let trained = null;
  // Where the picture comes from: "live", "recording" (at recAt) or "incident" (its snapshot).
  let source = pick.incident ? "incident" : "live";
  let incident = pick.incident || null;
  let incidents = [];
  let recAt = new Date(Date.now() - 5 * 60 * 1000);
  let step = 10;  // seconds a recording label moves on
  let blobUrl = null;
  const status = el("p", { class: "lb-status", role: "status" });
  const error = el("p", { class: "error", role: "alert" });
  const still = el("img", { class: "lb-still", alt: t("lb_still") });
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("class", "lb-zone");
  overlay.setAttribute("viewBox", "0 0 1 1");
  overlay.setAttribute("preserveAspectRatio", "none");
  overlay.setAttribute("aria-hidden", "true");
  const frame = el("figure", { class: "lb-frame" }, still, overlay);

  const say = (text) => { status.textContent = text; error.textContent = ""; };
  const fail = (e) => { error.textContent = e.message; };
  const camPath = () => `/api/cameras/${encodeURIComponent(camera)}`;
  const zonePath = () => `${camPath()}/zones/${encodeURIComponent(zone)}`;

  function drawZone() {
    const z = zones.find((x) => x.id === zone);
    overlay.replaceChildren();
    if (!z || !z.points) return;
    const poly = document.createElementNS(SVG, "polygon");
    poly.setAttribute("points", z.points.map(([x, y]) => `${x},${y}`).join(" "));
    poly.setAttribute("vector-effect", "non-scaling-stroke");
    overlay.append(poly);
  }

  async function showPicture() {
    if (blobUrl) { URL.revokeObjectURL(blobUrl); blobUrl = null; }
    frame.classList.remove("lb-none");
    if (source === "live") {
      still.src = `${camPath()}/frame.jpg?t=${Date.now()}`;
    } else if (source === "incident") {
      if (incident) still.src = `/api/incidents/${encodeURIComponent(incident)}/snapshot.jpg`;
      else { still.removeAttribute("src"); frame.classList.add("lb-none"); }
    } else {
      const res = await fetch(`${camPath()}/recorded.jpg?at=${encodeURIComponent(recAt.toISOString())}`);
      if (res.ok) { blobUrl = URL.createObjectURL(await res.blob()); still.src = blobUrl; return true; }
      const body = await res.json().catch(() => ({}));
      still.removeAttribute("src");
      frame.classList.add("lb-none");
      error.textContent = typeof body.detail === "string" ? body.detail : `${res.status}`;
      return false;
    }
    return true;
  }

  async function load() {
    zones = await call("GET", `${camPath()}/label-zones`).catch(() => []);
    if (!zones.find((z) => z.id === zone)) zone = zones.length ? zones[0].id : null;
    info = zone ? await call("GET", `${zonePath()}/labels`)
      .catch(() => ({ labels: [], versions: [], enabled: null })) : { labels: [], versions: [], enabled: null };
    for (const l of info.labels) if (!states.includes(l.state)) states.push(l.state);
    incidents = (await call("GET", `/api/incidents?camera=${encodeURIComponent(camera)}&limit=50`).catch(() => []))
      .filter((i) => i.snapshot_ref);
    if (incident && !incidents.find((i) => i.id === incident)) incident = null;
    render();
    drawZone();
    await showPicture();
  }

  async function label(state) {
    if (!zone) return;
    if (source === "incident" && !incident) { fail(new Error(t("lb_pick_incident"))); return; }
    const ref = source === "recording" ? recAt.toISOString() : source === "incident" ? incident : null;
    try {
      await call("POST", `${zonePath()}/labels`, { state, source, ref });
      say(`${t("lb_labelled")}: ${state}`);
      if (source === "recording") recAt = new Date(recAt.getTime() + step * 1000);
      await load();
      if (source !== "live") say(`${t("lb_labelled")}: ${state}`);
    } catch (e) { fail(e); }
  }

  async function train() {
    say(t("lb_training"));
    try {
      trained = await call("POST", `${zonePath()}/train`);
      say(`${t("lb_trained")} v${trained.version}`);
      await load();
    } catch (e) { fail(e); }
  }

  async function enable(version) {
    try {
      await call("POST", version == null ? `${zonePath()}/models/disable` : `${zonePath()}/models/${version}/enable`);
      say(version == null ? t("lb_disabled") : `v${version} ${t("lb_enabled")}`);
      await load();
    } catch (e) { fail(e); }
  }

  function sourcePicker() {
    const tabs = ["live", "recording", "incident"].map((s) => el("button", {
      class: `btn ${source === s ? "primary" : ""}`, type: "button", dataset: { source: s },
      "aria-pressed": source === s ? "true" : "false",
      onclick: () => { source = s; error.textContent = ""; render(); drawZone(); showPicture(); } }, t(`lb_src_${s}`)));
    let detail = null;
    if (source === "recording") {
      const when = el("input", { type: "datetime-local", step: "1", class: "lb-when", "aria-label": t("lb_src_recording") });
      when.value = localValue(recAt);
      when.addEventListener("change", () => { if (when.value) { recAt = new Date(when.value); showPicture(); } });
      const stepIn = el("input", { type: "number", min: "1", max: "3600", class: "lb-step", "aria-label": t("lb_step") });
      stepIn.value = `${step}`;
      stepIn.addEventListener("change", () => { step = Math.max(1, Number(stepIn.value) || 10); });
      const move = (s) => el("button", { class: "btn", type: "button", dataset: { move: `${s}` }, onclick: () => {
        recAt = new Date(recAt.getTime() + s * 1000); when.value = localValue(recAt); showPicture(); } },
      s < 0 ? `− ${-s} s` : `+ ${s} s`);
      detail = el("div", { class: "lb-source" }, when, move(-step), move(step),
        el("label", {}, `${t("lb_step")} `, stepIn, " s"));
    } else if (source === "incident") {
      const sel = el("select", { class: "lb-incident", "aria-label": t("lb_src_incident") },
        el("option", { value: "" }, incidents.length ? t("lb_pick_incident") : t("lb_no_snapshots")),
        ...incidents.map((i) => el("option", { value: i.id },
          `${fmtWhen(i.started_at)} · ${i.title}${i.state === "false_alarm" ? " ✗" : ""}`)));
      sel.value = incident || "";
      sel.addEventListener("change", () => { incident = sel.value || null; showPicture(); });
      detail = el("div", { class: "lb-source" }, sel);
    }
    return el("div", { class: "lb-sources" }, el("div", { class: "lb-tabs", role: "group" }, ...tabs), detail);
  }

  function counts() {
    const n = {};
    for (const l of info.labels) n[l.state] = (n[l.state] || 0) + 1;
    return n;
  }

  function evaluation() {
    const ev = trained && trained.evaluation;
    if (!ev) return null;
    return el("table", { class: "manage-table lb-eval" },
      el("thead", {}, el("tr", {}, el("th", {}, t("lb_state")), el("th", {}, t("lb_trained_on")),
        el("th", {}, t("lb_held_back")), el("th", {}, t("lb_right")))),
      el("tbody", {}, ...trained.states.map((s) => el("tr", {},
        el("td", {}, s), el("td", {}, `${ev.trained_on[s] || 0}`), el("td", {}, `${ev.held_back[s] || 0}`),
        el("td", {}, ev.per_state[s] == null ? "—" : `${Math.round(ev.per_state[s] * 100)}%`)))),
      el("caption", {}, ev.accuracy == null ? t("lb_too_few")
        : `${t("lb_accuracy")}: ${Math.round(ev.accuracy * 1000) / 10}%`));
  }

  // Rules that cry wolf: shares of false alarms; a flagged rule's latest false alarms, each a
  // "normal" label of its zone in one click.
  let honesty = [];
  async function loadHonesty() {
    honesty = await call("GET", "/api/false-alarms").catch(() => []);
  }
  function falseAlarms() {
    const pct = (v) => (v == null ? "—" : `${Math.round(v * 100)}%`);
    const rows = honesty.map((h) => el("tr", { class: h.flagged ? "lb-flagged" : "", dataset: { rule: `${h.camera_id}/${h.rule}` } },
      el("td", {}, `${(cameras.get(h.camera_id) || { name: h.camera_id }).name} · ${h.rule}`),
      el("td", {}, `${pct(h.share_7d)} (${h.false_alarms_7d}/${h.incidents_7d})`),
      el("td", {}, `${pct(h.share_30d)} (${h.false_alarms_30d}/${h.incidents_30d})`),
      el("td", {}, h.flagged ? el("b", { class: "warn" }, t("lb_flagged")) : "—"),
      el("td", {}, ...h.examples.map((id) => el("span", { class: "lb-example" },
        el("img", { src: `/api/incidents/${encodeURIComponent(id)}/snapshot.jpg`, alt: id, loading: "lazy" }),
        el("button", { class: "btn", type: "button", dataset: { normal: id }, onclick: async () => {
          try { const made = await call("POST", `/api/incidents/${encodeURIComponent(id)}/label-normal`);
            say(`${t("lb_labelled")}: ${made.state} (${made.zone_id})`); await load(); } catch (e) { fail(e); }
        } }, t("lb_as_normal")))))));
    return el("section", { class: "lb-honesty" }, el("h4", {}, t("lb_false_alarms")),
      rows.length ? el("table", { class: "manage-table" },
        el("thead", {}, el("tr", {}, el("th", {}, t("lb_rule")), el("th", {}, "7 hr"), el("th", {}, "30 hr"),
          el("th", {}, ""), el("th", {}, t("lb_examples")))), el("tbody", {}, ...rows))
        : el("p", { class: "muted" }, "—"));
  }

  function render() {
    const n = counts();
    const camPick = el("select", { "aria-label": t("cameras") },
      ...camIds.map((id) => el("option", { value: id }, cameras.get(id).name || id)));
    camPick.value = camera;
    camPick.addEventListener("change", () => { camera = camPick.value; zone = null; trained = null; incident = null; load(); });
    const zonePick = el("select", { "aria-label": "zone" }, ...zones.map((z) => el("option", { value: z.id }, z.name)));
    zonePick.value = zone || "";
    zonePick.addEventListener("change", () => { zone = zonePick.value; trained = null; load(); });
    const newState = el("input", { class: "lb-new", placeholder: t("lb_new_state"), maxlength: "40" });
    const add = el("button", { class: "btn", type: "button", onclick: () => {
      const v = newState.value.trim().toLowerCase();
      if (v && !states.includes(v)) { states.push(v); render(); drawZone(); }
    } }, t("add"));
    const buttons = states.map((s, i) => el("button", { class: "btn lb-state", type: "button",
      dataset: { state: s }, onclick: () => label(s) }, `${i + 1} · ${s} (${n[s] || 0})`));
    const versions = info.versions.map((v) => el("button", {
      class: `btn ${info.enabled === v ? "primary" : ""}`, type: "button", dataset: { version: `${v}` },
      onclick: () => enable(v) }, info.enabled === v ? `v${v} ✓` : `v${v}`));
    const off = info.enabled != null ? el("button", { class: "btn", type: "button", dataset: { do: "disable" },
      onclick: () => enable(null) }, t("lb_disable")) : null;
    dlg.replaceChildren(
      el("h3", {}, t("lb_title")),
      el("div", { class: "lb-pick" }, camPick, zonePick),
      sourcePicker(),
      el("div", { class: "lb-body" }, frame,
        el("div", { class: "lb-side" },
          el("p", { class: "muted" }, t(source === "recording" ? "lb_help_rec" : "lb_help")),
          el("div", { class: "lb-states" }, ...buttons),
          el("div", {}, newState, add),
          el("p", {}, el("button", { class: "btn primary", type: "button", dataset: { do: "train" },
            onclick: train }, t("lb_train"))),
          evaluation(),
          versions.length ? el("p", { class: "lb-versions" }, `${t("lb_models")}: `, ...versions, off) : null,
          el("p", { class: "muted" }, info.enabled != null ? `${t("lb_in_use")} v${info.enabled}` : t("lb_classical")))),
      status, error, falseAlarms(),
      el("button", { class: "btn close", type: "button", onclick: () => dlg.close() }, t("close")));
  }

  // Quick keys: 1..9 label the picture as that state; R a new picture (live), or the next
  // step of the recording; Shift+R the step before.
  dlg.onkeydown = (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    const k = Number(ev.key);
    if (k >= 1 && k <= states.length) { ev.preventDefault(); label(states[k - 1]); }
    if (ev.key === "r" || ev.key === "R") {
      if (source === "recording") { recAt = new Date(recAt.getTime() + (ev.shiftKey ? -step : step) * 1000); render(); drawZone(); }
      showPicture();
    }
  };
  dlg.onclose = () => { if (blobUrl) { URL.revokeObjectURL(blobUrl); blobUrl = null; } };
  if (!dlg.open) dlg.showModal();
  await loadHonesty();
  await load();
}
