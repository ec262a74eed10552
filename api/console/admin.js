// The administrator's page: the alerts sent and those that could not be
// (dead letters first among what needs doing), revoke someone's access at
// once, take a backup, let the store accept appends again after a failed
// write, and check a case's hash chain. Each is one API call; each answer
// is shown as it came.
import { api, h, show, showErrors, clearErrors, announce, humanize, when, ApiError } from "/console/ui.js";

function action(id, title, intro, fields, send, describe) {
  const result = h("div", { id: `${id}-result`, role: "status" });
  const form = h("form", { novalidate: true, id }, fields,
    h("button", { type: "submit" }, title));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    result.replaceChildren();
    try {
      const r = await send(form);
      result.replaceChildren(h("p", { class: "notice" }, describe(r.body)));
      announce(describe(r.body));
    } catch (e) {
      showErrors(form, e);
    }
  });
  return h("section", { "aria-labelledby": `${id}-h` },
    h("h2", { id: `${id}-h` }, title), h("p", {}, intro), form, result);
}

function input(id, pointer, label, hint) {
  return h("div", { class: "field", "data-pointer": pointer },
    h("label", { for: id }, label),
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("input", { id, type: "text", autocomplete: "off", "aria-describedby": hint ? `${id}-hint` : null }));
}

const STATUSES = [["", "All"], ["dead", "Dead letters"], ["pending", "Waiting to be sent"], ["delivered", "Delivered"], ["withheld", "Withheld"]];

// GET /v1/admin/notifications as a section: the outbox's state, a status
// filter, and a page of alerts with each one's attempts.
async function notificationsSection(params) {
  const status = params.get("status") || "";
  const query = new URLSearchParams({ limit: "25" });
  if (status) query.set("status", status);
  if (params.get("before")) query.set("before", params.get("before"));
  const heading = h("h2", { id: "alerts-h" }, "Alerts");
  let list;
  try {
    list = (await api("GET", `/v1/admin/notifications?${query}`)).body;
  } catch (e) {
    if (e instanceof ApiError && e.status === 503) {
      return h("section", { "aria-labelledby": "alerts-h", id: "alerts" }, heading,
        h("p", {}, "Alerting is not configured on this server (the configuration's notify section)."));
    }
    throw e;
  }
  const o = list.outbox;
  const summary = h("p", { id: "alerts-summary" },
    `${o.dead} dead letter${o.dead === 1 ? "" : "s"}, ${o.pending} waiting to be sent. `,
    o.healthy ? "Alerting is following the log." : h("strong", {}, `Alerting has stopped: ${o.error || "see the server's log"}.`));
  const select = h("select", { id: "alerts-status", name: "status" },
    STATUSES.map(([v, label]) => h("option", { value: v, selected: v === status }, label)));
  const filter = h("form", { id: "alerts-filter", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "alerts-status" }, "Show"), select),
    h("button", { type: "submit" }, "Show alerts"));
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = select.value ? `#/admin?status=${encodeURIComponent(select.value)}` : "#/admin";
  });
  const rows = list.notifications;
  const table = rows.length === 0
    ? h("p", { id: "alerts-empty" }, "No alerts to show.")
    : h("div", { class: "table-wrap" }, h("table", { class: "stack", id: "alerts-table" },
      h("caption", {}, `${rows.length} alert${rows.length === 1 ? "" : "s"}, newest first`),
      h("thead", {}, h("tr", {}, ["Planned", "What", "Case", "To", "Status", "Attempts", "Last answer"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((n) => h("tr", { "data-status": n.status },
        h("td", { "data-label": "Planned" }, when(n.created_at)),
        h("td", { "data-label": "What" }, humanize(n.kind), n.urgency === "standard" ? null : h("strong", {}, ` (${n.urgency})`)),
        h("td", { "data-label": "Case", class: "mono" }, n.case_id),
        h("td", { "data-label": "To" }, `${n.recipient} by ${n.channel === "none" ? "no channel" : n.channel}`),
        h("td", { "data-label": "Status" }, n.status === "dead" ? h("strong", {}, "Dead letter") : humanize(n.status)),
        h("td", { "data-label": "Attempts" }, String(n.attempts)),
        h("td", { "data-label": "Last answer" }, n.last_error || (n.history.length ? n.history[n.history.length - 1].detail : "—")))))));
  const more = new URLSearchParams();
  if (status) more.set("status", status);
  if (list.next) more.set("before", list.next);
  return h("section", { "aria-labelledby": "alerts-h", id: "alerts" }, heading,
    h("p", {}, "Each alert goes to one person on one channel, and names only what happened, on which case, how urgent and by when. A dead letter failed every attempt, or names someone with no address configured."),
    summary, filter, table,
    list.next ? h("p", {}, h("a", { href: `#/admin?${more}` }, "Older alerts")) : null);
}

export async function adminPage({ params } = { params: new URLSearchParams() }) {
  const alerts = await notificationsSection(params);
  show("Administration",
    h("h1", {}, "Administration"),
    alerts,
    action("revoke", "Revoke access",
      "Ends every live token of a person (and their console sessions) at once, on the log.",
      input("revoke-actor", "/actor_id", "Their actor id", "For example user:alt-dsl-1."),
      (f) => api("POST", "/v1/admin/tokens/revoke", { actor_id: f.querySelector("#revoke-actor").value.trim() }),
      (b) => `Revoked ${b.revoked} token${b.revoked === 1 ? "" : "s"}.`),
    action("backup", "Take a backup",
      "A consistent copy of the store in the configured backup directory. Personal data in it stays sealed.",
      [],
      () => api("POST", "/v1/admin/backups", {}),
      (b) => `Backup made in ${b.backup}, up to log position ${b.position}.`),
    action("resume", "Accept appends again",
      "After a failed write (a full disk, say), the store refuses appends until it has checked itself; this asks it to now.",
      [],
      () => api("POST", "/v1/admin/store/resume", {}),
      (b) => `The store accepts appends again, at log position ${b.log_position !== undefined ? b.log_position : b.position}.`),
    action("verify", "Check a case's hash chain",
      "Recomputes the case's hash chain; names the first broken link if there is one. Reads no personal data.",
      input("verify-case", "/case_id", "Case reference", null),
      (f) => api("GET", `/v1/cases/${encodeURIComponent(f.querySelector("#verify-case").value.trim())}/verify`),
      (b) => (b.ok ? `The chain of ${b.case_id} verifies: ${b.events_checked} events.`
        : `The chain of ${b.case_id} is broken at version ${b.first_broken.version}: ${b.first_broken.reason}.`)));
}
