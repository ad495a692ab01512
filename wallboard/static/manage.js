// The "Manage" dialog: silences (maintenance windows) for supervisors, accounts for admins.
// Everything goes through the same REST API another client would use.

const KINDS = ["crowd", "traffic", "flood", "tamper", "offline", "fire", "accident", "landslide",
  "weather", "alert"];
const ROLES = ["viewer", "operator", "supervisor", "admin", "opd"];

async function call(method, url, body) {
  const res = await fetch(url, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) {
    const detail = (await res.json().catch(() => ({}))).detail;
    throw new Error(`${res.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return res.json();
}

function select(el, name, options, label) {
  return el("select", { name, "aria-label": label },
    ...options.map(([value, text]) => el("option", { value }, text)));
}

export async function openManage(ctx) {
  const { el, t, tk, me, fmtTime } = ctx;
  const dlg = document.querySelector("#manage-dialog");
  const error = el("p", { class: "error", role: "alert" });
  const sections = [];
  const fail = (e) => { error.textContent = e.message; };
  const rank = { viewer: 0, opd: 0, operator: 1, supervisor: 2, admin: 3 };

  if (rank[me.role] >= 2) {
    const silences = await call("GET", "/api/silences").catch(() => []);
    const rows = silences.map((s) => el("tr", { dataset: { silence: s.id } },
      el("td", {}, s.comment), el("td", {}, fmtTime(s.ends_at)),
      el("td", {}, [...s.kinds.map((k) => tk("kind", k)), ...s.kecamatan, ...s.cameras, ...s.opds]
        .join(", ") || t("everything")),
      el("td", {}, el("button", { class: "btn", type: "button", onclick: async () => {
        try { await call("DELETE", `/api/silences/${encodeURIComponent(s.id)}`); openManage(ctx); }
        catch (e) { fail(e); }
      } }, t("end_now")))));
    const any = (label) => [["", label]];
    const form = el("form", { class: "manage-form", id: "silence-form" },
      el("input", { name: "comment", required: "", maxlength: "500", placeholder: t("reason"),
        "aria-label": t("reason") }),
      select(el, "hours", [1, 2, 4, 8, 24, 72].map((h) => [String(h), `${h} ${t("hour")}`]), t("hours")),
      select(el, "kind", any(tk("filter", "kind")).concat(KINDS.map((k) => [k, tk("kind", k)])), "kind"),
      select(el, "kecamatan", any(tk("filter", "kecamatan")).concat(ctx.kecamatan.map((k) => [k, k])),
        "kecamatan"),
      select(el, "camera", any(t("all_cameras")).concat([...ctx.cameras.values()].map((c) => [c.id, c.name])),
        "camera"),
      select(el, "opd", any(tk("filter", "opd")).concat(ctx.opds.map((o) => [o.id, o.name])), "OPD"),
      el("button", { class: "btn primary", type: "submit" }, t("add")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const one = (name) => (f.get(name) ? [f.get(name)] : []);
      try {
        await call("POST", "/api/silences", {
          comment: f.get("comment"),
          ends_at: new Date(Date.now() + Number(f.get("hours")) * 3600e3).toISOString(),
          kinds: one("kind"), kecamatan: one("kecamatan"), cameras: one("camera"), opds: one("opd"),
        });
        openManage(ctx);
      } catch (e) { fail(e); }
    });
    sections.push(el("section", { class: "manage-silences" }, el("h4", {}, t("silences")),
      rows.length ? el("table", { class: "manage-table" }, el("tbody", {}, ...rows))
        : el("p", { class: "muted" }, t("no_silences")), form));
  }

  if (me.role === "admin") {
    const users = await call("GET", "/api/users").catch(() => []);
    const rows = users.map((u) => el("tr", { class: u.disabled ? "is-disabled" : "", dataset: { user: u.username } },
      el("td", {}, u.username), el("td", {}, u.display_name),
      el("td", {}, tk("roles", u.role) + (u.opd_id ? ` · ${u.opd_id}` : "")),
      el("td", {}, u.disabled ? t("disabled") : u.username === me.username ? "" :
        el("button", { class: "btn", type: "button", onclick: async () => {
          try { await call("DELETE", `/api/users/${encodeURIComponent(u.username)}`); openManage(ctx); }
          catch (e) { fail(e); }
        } }, t("disable")))));
    const form = el("form", { class: "manage-form", id: "user-form" },
      el("input", { name: "username", required: "", pattern: "[a-z0-9][a-z0-9._-]{1,31}",
        placeholder: t("username"), "aria-label": t("username"), autocomplete: "off" }),
      el("input", { name: "display_name", placeholder: t("name"), "aria-label": t("name") }),
      select(el, "role", ROLES.map((r) => [r, tk("roles", r)]), t("role")),
      select(el, "opd_id", [["", "—"]].concat(ctx.opds.map((o) => [o.id, o.name])), "OPD"),
      el("input", { name: "password", type: "password", required: "", minlength: "10",
        placeholder: t("password"), "aria-label": t("password"), autocomplete: "new-password" }),
      el("button", { class: "btn primary", type: "submit" }, t("add")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(form));
      if (!f.opd_id) delete f.opd_id;
      try { await call("POST", "/api/users", f); openManage(ctx); } catch (e) { fail(e); }
    });
    sections.push(el("section", { class: "manage-users" }, el("h4", {}, t("users")),
      el("table", { class: "manage-table" }, el("tbody", {}, ...rows)), form));
  }

  if (rank[me.role] >= 2) {
    // Telegram: a one-time code links an officer's account to their OPD contact.
    const contacts = await call("GET", "/api/chat/contacts").catch(() => null);
    if (contacts) {
      const shown = el("p", { class: "link-code", role: "status" });
      const rows = contacts.map((c) => el("tr", { dataset: { contact: `${c.opd_id}/${c.contact_id}` } },
        el("td", {}, c.opd_name), el("td", {}, c.name),
        el("td", {}, c.telegram ? t("linked") : "—"),
        el("td", {}, el("button", { class: "btn", type: "button", onclick: async () => {
          try {
            const made = await call("POST", `/api/opds/${encodeURIComponent(c.opd_id)}/contacts/${encodeURIComponent(c.contact_id)}/link-code`);
            shown.textContent = `${c.name}: ${made.how}`;
          } catch (e) { fail(e); }
        } }, t("link_code")))));
      sections.push(el("section", { class: "manage-chat" }, el("h4", {}, t("chat_links")),
        el("table", { class: "manage-table" }, el("tbody", {}, ...rows)), shown));
    }
  }

  dlg.replaceChildren(el("h3", {}, t("manage")), error, ...sections,
    el("button", { class: "btn close", type: "button", onclick: () => dlg.close() }, t("close")));
  if (!dlg.open) dlg.showModal();
}
