// The zone and rule editor (admins): the camera's still with its zones and counting lines
// drawn over it; points moved, added and deleted with mouse or touch (pointer events), whole
// shapes dragged; names and thresholds in a form beside it. Saving writes cameras.yaml through
// the API (validated there first, the old file kept, applied live); the validator's errors are
// shown beside the field they name.

const SVG = "http://www.w3.org/2000/svg";
// Rule fields a person tunes on site; other fields of a rule stay as the file has them.
const RULE_FIELDS = {
  crowd: ["min_count", "min_density", "for", "clear_after", "cooldown"],
  traffic: ["min_count", "slow_speed", "jam_speed", "for", "clear_after", "cooldown"],
  flood: ["level", "for", "clear_after", "cooldown"],
  tamper: ["for", "clear_after", "offline_s", "frozen_s"],
};
const SEVERITIES = ["info", "low", "medium", "high", "critical"];
const NEW_RULE = {
  crowd: { min_count: 5, for: 5, clear_after: 10 },
  traffic: { min_count: 5, for: 20, clear_after: 30 },
  flood: { level: 0.3, for: 10, clear_after: 60 },
  tamper: { for: 5 },
};

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function call(method, url, body) {
  const res = await fetch(url, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.detail || String(res.status)), { status: res.status, data });
  return data;
}

const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 10000) / 10000;

export async function openEditor(ctx, cameraId, options = {}) {
  const { el, t } = ctx;
  const dlg = document.querySelector("#editor");
  const ids = [...ctx.cameras.keys()];
  let camId = cameraId || ids[0];
  let doc = null;             // what the API gave: {digest, zones, lines, rules}
  let size = { w: 1, h: 1 };  // the still's pixels (for zones in pixel units)
  let selected = null;        // {kind: "zones"|"lines", index}
  let errors = [];

  const stage = el("div", { class: "ed-stage" });
  const img = el("img", { class: "ed-still", alt: "" });
  // In the still's own pixels, so that handles are round; shapes are kept normalized.
  const overlay = svg("svg", { class: "ed-overlay", viewBox: "0 0 1 1", preserveAspectRatio: "none" });
  const px = (pts) => pts.map(([x, y]) => `${x * size.w},${y * size.h}`).join(" ");
  stage.append(img, overlay);
  const form = el("div", { class: "ed-form" });
  const message = el("p", { class: "ed-message", role: "status" });

  // Shapes are edited in normalized units; pixel-unit shapes are converted there and back.
  const toNorm = (shape) => (shape.units === "pixels"
    ? shape.points.map(([x, y]) => [x / size.w, y / size.h]) : shape.points.map((p) => [...p]));
  const fromNorm = (shape, pts) => (shape.units === "pixels"
    ? pts.map(([x, y]) => [Math.round(x * size.w), Math.round(y * size.h)])
    : pts.map(([x, y]) => [round(x), round(y)]));

  function shapes() {
    return [...doc.zones.map((z, i) => ({ kind: "zones", index: i, shape: z })),
      ...doc.lines.map((l, i) => ({ kind: "lines", index: i, shape: l }))];
  }

  function errorFor(kind, index, field) {
    return errors.filter((e) => e.loc && e.loc[0] === kind && e.loc[1] === index
      && (field === undefined || e.loc[2] === field))
      .map((e) => e.msg.replace(/^[^:]+:\d+: (cameras\[\d+\]\.\w+\[\d+\]\.?)?/, ""));
  }

  function pointerPos(ev) {
    const r = overlay.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
  }

  function drag(ev, onMove) {
    ev.preventDefault();
    ev.stopPropagation();
    // Captured by the overlay itself: the shapes under the pointer are redrawn as it moves.
    const target = overlay;
    target.setPointerCapture(ev.pointerId);
    const start = pointerPos(ev);
    const move = (e) => onMove(pointerPos(e), start);
    const up = () => {
      target.releasePointerCapture(ev.pointerId);
      target.removeEventListener("pointermove", move);
      target.removeEventListener("pointerup", up);
      target.removeEventListener("pointercancel", up);
      renderForm();
    };
    target.addEventListener("pointermove", move);
    target.addEventListener("pointerup", up);
    target.addEventListener("pointercancel", up);
  }

  function setPoints(item, pts) {
    item.shape.points = fromNorm(item.shape, pts);
    drawShapes();
  }

  function drawShapes() {
    overlay.replaceChildren();
    for (const item of shapes()) {
      const pts = toNorm(item.shape);
      const isSel = selected && selected.kind === item.kind && selected.index === item.index;
      const bad = errorFor(item.kind, item.index).length > 0;
      const cls = `ed-${item.kind === "zones" ? "zone" : "line"}${isSel ? " sel" : ""}${bad ? " bad" : ""}`;
      const body = svg(item.kind === "zones" ? "polygon" : "polyline", { class: cls, points: px(pts) });
      body.dataset.kind = item.kind;
      body.dataset.index = item.index;
      body.dataset.id = item.shape.id;
      body.addEventListener("pointerdown", (ev) => {
        // With a zone selected, a tap elsewhere (even on another shape) adds a point to it;
        // another shape is picked from the list beside the picture.
        if (selected && selected.kind === "zones" && !isSel) { addPointAt(ev); return; }
        selected = { kind: item.kind, index: item.index };
        const from = toNorm(item.shape);
        drawShapes();
        drag(ev, (p, s) => setPoints(item, from.map(([x, y]) => [clamp(x + p[0] - s[0]), clamp(y + p[1] - s[1])])));
      });
      overlay.append(body);
      if (!isSel) continue;
      pts.forEach((pt, k) => {
        const handle = svg("circle", { class: "ed-handle", cx: pt[0] * size.w, cy: pt[1] * size.h,
          r: 0.012 * Math.max(size.w, size.h) });
        handle.dataset.point = k;
        handle.addEventListener("pointerdown", (ev) => {
          selected.point = k;
          drag(ev, (p) => { const now = toNorm(item.shape); now[k] = p; setPoints(item, now); });
        });
        handle.addEventListener("dblclick", (ev) => { ev.stopPropagation(); removePoint(item, k); });
        overlay.append(handle);
      });
    }
  }

  // A tap on the picture adds a point to the selected zone, on the edge nearest to it.
  overlay.addEventListener("pointerdown", (ev) => { if (ev.target === overlay) addPointAt(ev); });

  function addPointAt(ev) {
    if (!selected || selected.kind !== "zones") return;
    ev.preventDefault();
    ev.stopPropagation();
    const item = shapes().find((s) => s.kind === "zones" && s.index === selected.index);
    const p = pointerPos(ev);
    const pts = toNorm(item.shape);
    let best = 0, bestD = Infinity;
    for (let i = 0; i < pts.length; i++) {
      const a = pts[i], b = pts[(i + 1) % pts.length];
      const dx = b[0] - a[0], dy = b[1] - a[1];
      const u = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy || 1)));
      const d = Math.hypot(a[0] + u * dx - p[0], a[1] + u * dy - p[1]);
      if (d < bestD) { bestD = d; best = i + 1; }
    }
    pts.splice(best, 0, p);
    selected.point = best;
    setPoints(item, pts);
    renderForm();
  }

  function removePoint(item, k) {
    const pts = toNorm(item.shape);
    if (item.kind === "lines" || pts.length <= 3) {
      message.textContent = t("ed_min_points");
      return;
    }
    pts.splice(k, 1);
    setPoints(item, pts);
    renderForm();
  }

  function nextId(prefix, list) {
    let n = list.length + 1;
    while (list.some((s) => s.id === `${prefix}-${n}`)) n++;
    return `${prefix}-${n}`;
  }

  function input(value, onChange, attrs = {}) {
    const node = el("input", { value: value ?? "", ...attrs });
    node.addEventListener("change", () => onChange(node.value));
    return node;
  }

  function numberField(obj, key, label, loc) {
    const node = input(obj[key], (v) => {
      if (v === "") delete obj[key]; else obj[key] = Number(v);
    }, { type: "number", step: "any", name: key, "data-loc": loc.join(".") });
    return field(label, node, loc);
  }

  function field(label, control, loc) {
    const msgs = errorFor(loc[0], loc[1], loc[2]);
    return el("label", { class: `ed-field${msgs.length ? " bad" : ""}` }, el("span", {}, label), control,
      ...msgs.map((m) => el("small", { class: "ed-error", role: "alert" }, m)));
  }

  function shapeBlock(kind, index) {
    const shape = doc[kind][index];
    const isSel = selected && selected.kind === kind && selected.index === index;
    const head = el("button", { type: "button", class: `ed-item${isSel ? " sel" : ""}`,
      dataset: { kind, index: String(index) },
      onclick: () => { selected = isSel ? null : { kind, index }; drawShapes(); renderForm(); } },
    `${kind === "zones" ? t("ed_zone") : t("ed_line")}: ${shape.name || shape.id}`);
    const block = el("div", { class: "ed-block" }, head);
    const pointErrors = errorFor(kind, index).filter((m) => !/^(id|name|area_m2):/.test(m));
    for (const m of pointErrors) block.append(el("small", { class: "ed-error", role: "alert" }, m));
    if (!isSel) return block;
    block.append(
      field(t("ed_id"), input(shape.id, (v) => { const old = shape.id; shape.id = v; renameZone(kind, old, v); render(); },
        { name: "id", "data-loc": `${kind}.${index}.id` }), [kind, index, "id"]),
      field(t("name"), input(shape.name, (v) => { shape.name = v; }, { name: "name" }), [kind, index, "name"]));
    if (kind === "zones") block.append(numberField(shape, "area_m2", t("ed_area"), [kind, index, "area_m2"]));
    const remove = el("button", { type: "button", class: "btn danger", dataset: { do: "delete-shape" }, onclick: () => {
      doc[kind].splice(index, 1); selected = null; render();
    } }, t("ed_delete_shape"));
    const tools = el("div", { class: "ed-tools" }, remove);
    if (kind === "zones" && selected.point !== undefined) {
      tools.append(el("button", { type: "button", class: "btn", dataset: { do: "delete-point" },
        onclick: () => removePoint({ kind, index, shape }, selected.point) }, t("ed_delete_point")));
    }
    block.append(tools, el("p", { class: "ed-hint" }, t(kind === "zones" ? "ed_hint_zone" : "ed_hint_line")));
    return block;
  }

  function renameZone(kind, old, now) {
    if (kind !== "zones") return;
    for (const r of doc.rules) if (r.zone === old) r.zone = now;
  }

  function ruleBlock(rule, index) {
    const block = el("div", { class: "ed-block" }, el("h4", {}, `${t("ed_rule")} ${index + 1}: ${ctx.tk("kind", rule.type)}`));
    const own = [...(RULE_FIELDS[rule.type] || []), "zone", "severity"];
    for (const m of errorFor("rules", index).filter((x) => !own.some((f) => x.startsWith(`${f}:`)))) {
      block.append(el("small", { class: "ed-error", role: "alert" }, m));
    }
    if ("zone" in rule || rule.type !== "tamper") {
      const pick = el("select", { name: "zone" }, ...doc.zones.map((z) => el("option", { value: z.id }, z.id)));
      pick.value = rule.zone;
      pick.addEventListener("change", () => { rule.zone = pick.value; });
      block.append(field(t("ed_zone"), pick, ["rules", index, "zone"]));
    }
    for (const key of RULE_FIELDS[rule.type] || []) {
      block.append(numberField(rule, key, t(`ed_f_${key}`), ["rules", index, key]));
    }
    const sev = el("select", { name: "severity" }, ...SEVERITIES.map((s) => el("option", { value: s }, ctx.tk("severity", s))));
    sev.value = rule.severity || (rule.type === "tamper" || rule.type === "flood" ? "high" : "medium");
    sev.addEventListener("change", () => { rule.severity = sev.value; });
    block.append(field(t("ed_severity"), sev, ["rules", index, "severity"]),
      el("button", { type: "button", class: "btn danger", dataset: { do: "delete-rule" },
        onclick: () => { doc.rules.splice(index, 1); render(); } }, t("ed_delete_rule")));
    return block;
  }

  // A new rule on the selected zone (or the first), with the defaults the file would get.
  function addRule() {
    const kind = el("select", { name: "new-rule", "aria-label": t("ed_add_rule") },
      ...Object.keys(NEW_RULE).map((k) => el("option", { value: k }, ctx.tk("kind", k))));
    const add = el("button", { type: "button", class: "btn", dataset: { do: "add-rule" }, onclick: () => {
      const zone = selected && selected.kind === "zones" ? doc.zones[selected.index] : doc.zones[0];
      const rule = { type: kind.value, ...NEW_RULE[kind.value] };
      if (kind.value !== "tamper") {
        if (!zone) { message.textContent = t("ed_need_zone"); return; }
        rule.zone = zone.id;
      }
      doc.rules.push(rule);
      render();
    } }, t("ed_add_rule"));
    return el("div", { class: "ed-tools" }, kind, add);
  }

  function renderForm() {
    const others = errors.filter((e) => !e.loc || !e.loc.length).map((e) => el("p", { class: "ed-error", role: "alert" }, e.msg));
    form.replaceChildren(
      el("h3", {}, t("ed_zones")), ...doc.zones.map((_, i) => shapeBlock("zones", i)),
      el("button", { type: "button", class: "btn", dataset: { do: "add-zone" }, onclick: () => {
        doc.zones.push({ id: nextId("zona", doc.zones), name: "", points: [[0.35, 0.35], [0.65, 0.35], [0.65, 0.65], [0.35, 0.65]] });
        selected = { kind: "zones", index: doc.zones.length - 1 }; render();
      } }, t("ed_add_zone")),
      el("h3", {}, t("ed_lines")), ...doc.lines.map((_, i) => shapeBlock("lines", i)),
      el("button", { type: "button", class: "btn", dataset: { do: "add-line" }, onclick: () => {
        doc.lines.push({ id: nextId("garis", doc.lines), points: [[0.2, 0.5], [0.8, 0.5]] });
        selected = { kind: "lines", index: doc.lines.length - 1 }; render();
      } }, t("ed_add_line")),
      el("h3", {}, t("ed_rules")), ...doc.rules.map(ruleBlock), addRule(), ...others);
  }

  function render() { drawShapes(); renderForm(); }

  async function load(id) {
    camId = id;
    errors = []; selected = null; message.textContent = "";
    doc = await call("GET", `/api/config/cameras/${encodeURIComponent(id)}`);
    await new Promise((resolve) => {
      img.onload = () => {
        size = { w: img.naturalWidth || 1, h: img.naturalHeight || 1 };
        overlay.setAttribute("viewBox", `0 0 ${size.w} ${size.h}`);
        resolve();
      };
      img.onerror = () => resolve();
      img.src = `/api/cameras/${encodeURIComponent(id)}/frame.jpg?t=${Date.now()}`;
    });
    render();
  }

  async function save() {
    message.textContent = t("ed_saving");
    try {
      const body = { digest: doc.digest, zones: doc.zones, lines: doc.lines, rules: doc.rules };
      const saved = await call("PUT", `/api/config/cameras/${encodeURIComponent(camId)}`, body);
      errors = [];
      doc.digest = saved.digest;
      const applied = saved.reload.ok ? t("ed_applied") : t("ed_not_applied");
      message.textContent = `${t("saved")} · ${applied}${saved.backup ? ` · ${t("ed_kept")} ${saved.backup}` : ""}`;
      render();
    } catch (e) {
      if (e.status === 422) {
        errors = e.data.errors || [];
        message.textContent = t("ed_invalid");
        render();
      } else if (e.status === 409) {
        message.textContent = t("ed_conflict");
      } else {
        message.textContent = e.message;
      }
    }
  }

  async function undo() {
    try {
      const saved = await call("POST", "/api/config/undo", { digest: doc.digest });
      await load(camId);
      message.textContent = `${t("ed_undone")} (${saved.backup})`;
    } catch (e) {
      message.textContent = e.status === 409 ? t("ed_conflict") : e.message;
    }
  }

  // "Uji aturan": the rules as saved, on the camera's last minutes (or an incident's clip).
  const results = el("section", { class: "ed-replay", hidden: "" });
  async function testRules(body) {
    results.hidden = false;
    results.replaceChildren(el("p", {}, t("ed_replaying")));
    try {
      let job = await call("POST", "/api/replays", body);
      while (job.state === "running") {
        await new Promise((r) => setTimeout(r, 1000));
        job = await call("GET", `/api/replays/${job.id}`);
      }
      if (job.state !== "done") throw new Error(job.error || job.state);
      results.replaceChildren(
        el("div", { class: "ed-replay-head" }, el("h3", {}, `${t("ed_test")}: ${job.source}`),
          el("button", { type: "button", class: "btn", onclick: () => { results.hidden = true; } }, t("close"))),
        el("pre", { class: "ed-replay-lines" }, job.lines.join("\n")),
        el("img", { class: "ed-chart", alt: t("ed_test"), src: `/api/replays/${job.id}/chart.png` }));
    } catch (e) {
      results.replaceChildren(el("p", { class: "ed-error", role: "alert" }, `${t("ed_test_failed")}: ${e.message}`),
        el("button", { type: "button", class: "btn", onclick: () => { results.hidden = true; } }, t("close")));
    }
  }

  const pick = el("select", { name: "camera", "aria-label": t("cameras") },
    ...ids.map((id) => el("option", { value: id }, ctx.cameras.get(id).name)));
  pick.value = camId;
  pick.addEventListener("change", () => load(pick.value).catch((e) => { message.textContent = e.message; }));
  const bar = el("div", { class: "ed-bar" }, el("h3", {}, t("ed_title")), pick,
    el("button", { type: "button", class: "btn primary", dataset: { do: "save" }, onclick: save }, t("ed_save")),
    el("button", { type: "button", class: "btn", dataset: { do: "undo" }, onclick: undo }, t("ed_undo")),
    el("button", { type: "button", class: "btn", dataset: { do: "test" },
      onclick: () => testRules({ camera_id: camId, minutes: 2 }) }, t("ed_test")),
    el("button", { type: "button", class: "btn", dataset: { do: "reload" }, onclick: () => load(camId) }, t("ed_reread")),
    el("button", { type: "button", class: "btn", onclick: () => dlg.close() }, t("close")));
  dlg.replaceChildren(bar, message, results, el("div", { class: "ed-body" }, stage, form));
  dlg.showModal();
  try { await load(camId); } catch (e) { message.textContent = e.message; }
  if (options.incidentId) testRules({ incident_id: options.incidentId });
}
