// The administrator's page: revoke someone's access at once, take a
// backup, let the store accept appends again after a failed write, and
// check a case's hash chain. Each is one API call; each answer is shown as
// it came.
import { api, h, show, showErrors, clearErrors, announce } from "/console/ui.js";

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

export async function adminPage() {
  show("Administration",
    h("h1", {}, "Administration"),
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
