// "Label keadaan" (admins and supervisors): label a camera zone's look as one of its states
// (kering, tergenang, banjir, any names) from the camera now, with quick keys 1-9; train the
// camera's own model and read its held-back accuracy per state before enabling it. And the
// rules that cry wolf: false-alarm shares, flagged rules with their latest false alarms, each a
// "normal" label in one click. Everything goes through the same REST API.

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

export async function openLabels(ctx, pick = {}) {
  const { el, t, cameras } = ctx;
  const dlg = document.querySelector("#labels");
  const camIds = [...cameras.keys()];
  let camera = pick.camera || camIds[0];
  let zones = [];
  let zone = pick.zone || null;
  let states = [...DEFAULT_STATES];
  let info = { labels: [], versions: [], enabled: null };
  let trained = null;
  const status = el("p", { class: "lb-status", role: "status" });
  const error = el("p", { class: "error", role: "alert" });
  const still = el("img", { class: "lb-still", alt: t("lb_still") });

  const say = (text) => { status.textContent = text; error.textContent = ""; };
  const fail = (e) => { error.textContent = e.message; };

  async function load() {
    zones = await call("GET", `/api/cameras/${encodeURIComponent(camera)}/label-zones`).catch(() => []);
    if (!zones.find((z) => z.id === zone)) zone = zones.length ? zones[0].id : null;
    info = zone ? await call("GET", `/api/cameras/${encodeURIComponent(camera)}/zones/${encodeURIComponent(zone)}/labels`)
      .catch(() => ({ labels: [], versions: [], enabled: null })) : { labels: [], versions: [], enabled: null };
    for (const l of info.labels) if (!states.includes(l.state)) states.push(l.state);
    still.src = `/api/cameras/${encodeURIComponent(camera)}/frame.jpg?t=${Date.now()}`;
    render();
  }

  async function label(state) {
    if (!zone) return;
    try {
      await call("POST", `/api/cameras/${encodeURIComponent(camera)}/zones/${encodeURIComponent(zone)}/labels`,
        { state, source: "live" });
      say(`${t("lb_labelled")}: ${state}`);
      await load();
    } catch (e) { fail(e); }
  }

  async function train() {
    say(t("lb_training"));
    try {
      trained = await call("POST", `/api/cameras/${encodeURIComponent(camera)}/zones/${encodeURIComponent(zone)}/train`);
      say(`${t("lb_trained")} v${trained.version}`);
      await load();
    } catch (e) { fail(e); }
  }

  async function enable(version) {
    try {
      await call("POST", `/api/cameras/${encodeURIComponent(camera)}/zones/${encodeURIComponent(zone)}/models/${version}/enable`);
      say(`v${version} ${t("lb_enabled")}`);
      await load();
    } catch (e) { fail(e); }
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
    camPick.addEventListener("change", () => { camera = camPick.value; zone = null; trained = null; load(); });
    const zonePick = el("select", { "aria-label": "zone" }, ...zones.map((z) => el("option", { value: z.id }, z.name)));
    zonePick.value = zone || "";
    zonePick.addEventListener("change", () => { zone = zonePick.value; trained = null; load(); });
    const newState = el("input", { class: "lb-new", placeholder: t("lb_new_state"), maxlength: "40" });
    const add = el("button", { class: "btn", type: "button", onclick: () => {
      const v = newState.value.trim().toLowerCase();
      if (v && !states.includes(v)) { states.push(v); render(); }
    } }, t("add"));
    const buttons = states.map((s, i) => el("button", { class: "btn lb-state", type: "button",
      dataset: { state: s }, onclick: () => label(s) }, `${i + 1} · ${s} (${n[s] || 0})`));
    const versions = info.versions.map((v) => el("button", {
      class: `btn ${info.enabled === v ? "primary" : ""}`, type: "button", dataset: { version: `${v}` },
      onclick: () => enable(v) }, info.enabled === v ? `v${v} ✓` : `v${v}`));
    dlg.replaceChildren(
      el("h3", {}, t("lb_title")),
      el("div", { class: "lb-pick" }, camPick, zonePick),
      el("div", { class: "lb-body" }, still,
        el("div", { class: "lb-side" },
          el("p", { class: "muted" }, t("lb_help")),
          el("div", { class: "lb-states" }, ...buttons),
          el("div", {}, newState, add),
          el("p", {}, el("button", { class: "btn primary", type: "button", dataset: { do: "train" },
            onclick: train }, t("lb_train"))),
          evaluation(),
          versions.length ? el("p", {}, `${t("lb_models")}: `, ...versions) : null)),
      status, error, falseAlarms(),
      el("button", { class: "btn close", type: "button", onclick: () => dlg.close() }, t("close")));
  }

  // Quick keys: 1..9 label the picture as that state, R refreshes it.
  dlg.onkeydown = (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    const k = Number(ev.key);
    if (k >= 1 && k <= states.length) { ev.preventDefault(); label(states[k - 1]); }
    if (ev.key === "r" || ev.key === "R") still.src = `/api/cameras/${encodeURIComponent(camera)}/frame.jpg?t=${Date.now()}`;
  };
  if (!dlg.open) dlg.showModal();
  await loadHonesty();
  await load();
}
