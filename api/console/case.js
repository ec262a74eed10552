// One case, for those who lead and oversee it: where it stands, the people
// (as the role may see them), consent per purpose with its history, the
// person's desired outcomes in their own words, risk, escalations, reviews,
// actions; every command as a form; the decision history as a timeline
// with each event's hashes and the chain's verification; the access log.
// Opening the page reads the case, its history and its chain check: each
// read is recorded in the case's access log by the server.
import { api, h, show, humanize, when, session, showErrors, clearErrors, ApiError, announce, roleName, eventName, commandName } from "/console/ui.js";
import { schemaFields } from "/console/schema_form.js";

const ERASED = "[erased]";

// The case document and history as loaded; a 412 compares against them.
let loaded = null;

function dl(pairs) {
  return h("dl", { class: "summary" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
function yesNo(b) { return b ? "Yes" : "No"; }
function text(v) {
  if (v === ERASED) return h("em", { class: "erased" }, "Erased");
  if (v === undefined || v === null) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
function section(id, title, ...content) {
  return h("section", { "aria-labelledby": `${id}-h`, id },
    h("h2", { id: `${id}-h` }, title), content);
}

function people(events) {
  const report = events.find((e) => e.type === "ConcernReported");
  const list = (report && report.payload.people_involved) || [];
  if (list.length === 0) return h("p", {}, "No people are recorded.");
  return h("div", { class: "table-wrap" }, h("table", { class: "stack", id: "people" },
    h("thead", {}, h("tr", {}, ["Ref", "Name or description", "Part", "Age band", "Contact"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.map((p) => h("tr", {},
      h("td", { "data-label": "Ref", class: "mono" }, p.person_ref),
      h("td", { "data-label": "Name or description" }, text(p.name || p.description || "Not recorded")),
      h("td", { "data-label": "Part" }, (p.roles || []).map(humanize).join(", ")),
      h("td", { "data-label": "Age band" }, p.age_band ? humanize(p.age_band) : ""),
      h("td", { "data-label": "Contact" }, p.contact ? (typeof p.contact === "string" ? text(p.contact) : Object.entries(p.contact).map(([k, v]) => h("div", {}, `${humanize(k)}: `, text(v)))) : ""))))));
}

function consent(events) {
  const decisions = events.filter((e) => e.type === "ConsentRecorded" || e.type === "ConsentOverridden");
  if (decisions.length === 0) return h("p", {}, "No consent decision is recorded yet.");
  const byPurpose = new Map();
  for (const e of decisions) {
    const key = e.payload.purpose;
    if (!byPurpose.has(key)) byPurpose.set(key, []);
    byPurpose.get(key).push(e);
  }
  return Array.from(byPurpose, ([purpose, list]) => {
    const latest = list[list.length - 1];
    const now = latest.type === "ConsentOverridden" ? `Overridden (${humanize(latest.payload.lawful_basis)})` : humanize(latest.payload.decision);
    return h("div", { class: "panel consent" },
      h("h3", {}, `${humanize(purpose)}: ${now}`),
      h("ol", { class: "consent-history" }, list.map((e) => h("li", {},
        h("strong", {}, e.type === "ConsentOverridden" ? `Overridden on the lawful basis of ${humanize(e.payload.lawful_basis).toLowerCase()}` : humanize(e.payload.decision)),
        ` for ${e.payload.person_ref}, by ${e.actor.id} (${roleName(e.actor.role)}), ${when(e.recorded_at)}.`,
        e.payload.rationale ? h("div", {}, "Why: ", text(e.payload.rationale)) : null,
        e.payload.wishes ? h("div", {}, "Their wishes: ", text(e.payload.wishes)) : null,
        e.payload.capacity ? h("div", {}, "Capacity: ", humanize(e.payload.capacity)) : null))));
  });
}

function outcomes(events) {
  const recorded = events.filter((e) => e.type === "DesiredOutcomesRecorded");
  if (recorded.length === 0) return h("p", {}, "No desired outcomes are recorded yet.");
  return recorded.map((e) => h("div", { class: "panel" },
    h("p", {}, `${e.payload.person_ref}, recorded ${when(e.recorded_at)} by ${e.actor.id}: ${humanize(e.payload.asked_about_outcomes)}.`),
    (e.payload.outcomes || []).length
      ? h("ul", {}, e.payload.outcomes.map((o) => h("li", {}, h("q", {}, text(o.in_own_words)))))
      : null));
}

function risk(events) {
  const assessed = events.filter((e) => e.type === "RiskAssessed");
  if (assessed.length === 0) return h("p", {}, "No risk assessment is recorded yet.");
  const e = assessed[assessed.length - 1];
  return [h("p", {}, `Latest assessment, ${when(e.recorded_at)} by ${e.actor.id}: zone ${humanize(e.payload.agreed_zone || "")}${e.payload.risk_result ? `, result ${humanize(e.payload.risk_result)}` : ""}.`),
    h("ul", {}, (e.payload.risk_areas || []).map((a) => h("li", {}, `${humanize(a.area)}: ${humanize(a.level || "")}`, a.description ? [" – ", text(a.description)] : null)))];
}

function tracked(title, map, columns) {
  const entries = Object.entries(map || {});
  if (entries.length === 0) return h("p", {}, `No ${title.toLowerCase()} yet.`);
  return h("div", { class: "table-wrap" }, h("table", { class: "stack" },
    h("thead", {}, h("tr", {}, [h("th", { scope: "col" }, "Id"), columns.map(([label]) => h("th", { scope: "col" }, label))])),
    h("tbody", {}, entries.map(([id, v]) => h("tr", {}, h("td", { "data-label": "Id", class: "mono" }, id),
      columns.map(([label, f]) => h("td", { "data-label": label }, f(v))))))));
}

// What each event says, for the timeline: its "why" first.
const WHY = ["rationale", "reason", "reason_detail", "change_reason", "summary", "not_sought_detail", "lawful_basis"];
function eventBody(e) {
  const p = e.payload || {};
  const why = WHY.filter((k) => p[k] !== undefined);
  const rest = Object.keys(p).filter((k) => !why.includes(k));
  return h("details", {},
    h("summary", {}, "What was recorded"),
    dl([...why, ...rest].map((k) => [humanize(k), text(p[k])])));
}

function timeline(events, verify) {
  const brokenAt = verify && verify.ok === false && verify.first_broken ? verify.first_broken.version : null;
  return h("ol", { class: "timeline", id: "timeline" }, events.map((e) => {
    const verified = verify && (verify.ok || (brokenAt && e.version < brokenAt));
    const p = e.payload || {};
    const why = WHY.map((k) => p[k]).find((v) => typeof v === "string");
    return h("li", { class: "timeline__event", id: `event-${e.version}` },
      h("h3", {}, `${e.version}. ${eventName(e.type)}`),
      h("p", {}, `${e.actor.id}, ${roleName(e.actor.role)}, ${when(e.recorded_at)}`),
      why ? h("p", {}, "Why: ", text(why)) : null,
      eventBody(e),
      h("p", { class: "hashes" },
        h("span", { class: verified ? "badge badge--ok" : "badge badge--bad" }, verified ? "Verified" : "Not verified"),
        " case hash ", h("span", { class: "mono", title: e.case_hash }, e.case_hash.slice(0, 16)), "…",
        " log hash ", h("span", { class: "mono", title: e.log_hash }, e.log_hash.slice(0, 16)), "…"));
  }));
}

// What changed between two case documents, for a 412: each top-level
// field that differs, before and after.
function changes(before, after) {
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  const rows = [];
  for (const k of keys) {
    const a = JSON.stringify(before ? before[k] : undefined);
    const b = JSON.stringify(after ? after[k] : undefined);
    if (a !== b && k !== "version") rows.push([humanize(k), a === undefined ? "—" : a, b === undefined ? "—" : b]);
  }
  return rows;
}

async function commandPanel(caseId) {
  const s = session.current;
  const commands = s.commands.filter((c) => c !== "report");
  if (commands.length === 0) return null;
  const picker = h("select", { id: "command-picker" }, h("option", { value: "" }, "Choose a command"),
    commands.map((c) => h("option", { value: c }, commandName(c))));
  const holder = h("div", { id: "command-form" });
  picker.addEventListener("change", async () => {
    holder.replaceChildren();
    const command = picker.value;
    if (!command) return;
    const fields = await schemaFields(s.command_schemas[command], (s.server_owned || {})[command]);
    const form = h("form", { novalidate: true, id: `form-${command}` }, fields.el,
      h("button", { type: "submit" }, `Record: ${commandName(command)}`));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); send(caseId, command, form, fields); });
    holder.appendChild(form);
    const first = form.querySelector("input, select, textarea");
    if (first) first.focus();
  });
  return section("commands", "Record a decision",
    h("p", {}, "Each command is checked against its schema and the case's rules; nothing is written unless all of it is accepted."),
    h("div", { class: "field" }, h("label", { for: "command-picker" }, "Command"), picker),
    holder);
}

async function send(caseId, command, form, fields, version = loaded.doc.version) {
  clearErrors(form);
  form.parentNode.querySelectorAll(".conflict").forEach((x) => x.remove());
  // What the schema requires is checked here first; the server checks
  // everything again, and what only it can (conditions, the case's state).
  const missing = fields.missing ? fields.missing() : [];
  if (missing.length) {
    showErrors(form, new ApiError(400, { errors: missing }));
    return;
  }
  try {
    await api("POST", `/v1/cases/${encodeURIComponent(caseId)}/commands/${command}`, fields.read(), { "If-Match": `"${version}"` });
    announce(`${commandName(command)} recorded`);
    await casePage({ rest: encodeURIComponent(caseId), recorded: command });
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) return conflict(caseId, command, form, fields);
    showErrors(form, e);
  }
}

// Someone else changed the case since it was loaded: say so, show what
// changed, and let the user send the same answers against the new state.
async function conflict(caseId, command, form, fields) {
  const before = loaded.doc;
  const [doc, history] = await Promise.all([
    api("GET", `/v1/cases/${encodeURIComponent(caseId)}`).then((r) => r.body),
    api("GET", `/v1/cases/${encodeURIComponent(caseId)}/history`).then((r) => r.body.events),
  ]);
  const newer = history.filter((e) => e.version > before.version);
  const rows = changes(before, doc);
  const box = h("div", { class: "warning conflict", role: "alert", tabindex: "-1", id: "conflict" },
    h("h3", {}, "Someone else changed this case"),
    h("p", {}, `While you were filling this in, the case moved from version ${before.version} to ${doc.version}. Nothing of yours was recorded. Check what changed, then send again if it still stands.`),
    newer.length ? h("ul", {}, newer.map((e) => h("li", {}, `${eventName(e.type)} by ${e.actor.id}, ${when(e.recorded_at)}`, eventBody(e)))) : null,
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "stack" },
      h("caption", {}, "What changed"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "Now"))),
      h("tbody", {}, rows.map(([k, a, b]) => h("tr", {}, h("td", { "data-label": "Field" }, k), h("td", { "data-label": "Before", class: "mono" }, a), h("td", { "data-label": "Now", class: "mono" }, b)))))) : null,
    h("button", { type: "button", onclick: () => { loaded.doc = doc; loaded.events = history; send(caseId, command, form, fields, doc.version); } }, "Send again against the new version"));
  form.before(box);
  box.focus();
}

export async function casePage({ rest, recorded }) {
  const caseId = decodeURIComponent(rest.split("/")[0]);
  if (rest.endsWith("/access-log")) return accessLogPage(caseId);
  const base = `/v1/cases/${encodeURIComponent(caseId)}`;
  const mayHistory = session.current.reads.includes("case_history");
  const [doc, history, verify] = await Promise.all([
    api("GET", base).then((r) => r.body),
    mayHistory ? api("GET", `${base}/history`).then((r) => r.body.events) : [],
    session.current.reads.includes("case_verify") ? api("GET", `${base}/verify`).then((r) => r.body).catch(() => null) : null,
  ]);
  loaded = { doc, events: history };
  const badge = verify
    ? h("p", { class: verify.ok ? "badge badge--ok" : "badge badge--bad", id: "verify-badge" },
      verify.ok ? `Hash chain verified: ${verify.events_checked} events` : `Hash chain broken at version ${verify.first_broken ? verify.first_broken.version : "?"}: ${verify.first_broken ? verify.first_broken.reason : ""}`)
    : null;
  show(`Case ${caseId}`,
    h("h1", {}, "Case ", h("span", { class: "mono" }, caseId)),
    recorded ? h("p", { class: "notice", role: "status" }, `${commandName(recorded)} recorded.`) : null,
    badge,
    h("nav", { "aria-label": "On this page", class: "toc" }, h("ul", {},
      [["summary", "Summary"], ["people-s", "People"], ["consent", "Consent"], ["outcomes", "Desired outcomes"], ["risk", "Risk"],
        ["escalations", "Escalations"], ["reviews", "Reviews"], ["actions", "Actions"], ["commands", "Record a decision"], ["history", "Decision history"]]
        .map(([id, t]) => h("li", {}, h("a", { href: `#/case/${encodeURIComponent(caseId)}`, onclick: (ev) => { ev.preventDefault(); const el = document.getElementById(id); if (el) { el.scrollIntoView(); el.querySelector("h2").setAttribute("tabindex", "-1"); el.querySelector("h2").focus(); } } }, t))),
      h("li", {}, h("a", { href: `#/case/${encodeURIComponent(caseId)}/access-log` }, "Access log")))),
    section("summary", "Summary", dl([
      ["Stage", humanize(doc.stage)],
      ["Kind", humanize(doc.kind || "")],
      ["Urgent", yesNo(doc.urgent)],
      ["Immediate risk when reported", yesNo(doc.immediate_risk)],
      ["Anyone under 18", yesNo(doc.under_18_involved)],
      ["Reported", when(doc.reported_at)],
      ["Take by", doc.stage === "reported" ? when(doc.acknowledgement_due_at) : null],
      ["Lead", doc.lead_actor_id ? `${doc.lead_actor_id} (${roleName(doc.lead_role)})` : "None yet"],
      ["Triage route", doc.triage_route ? humanize(doc.triage_route) : null],
      ["Categories", (doc.categories || []).map(humanize).join(", ")],
      ["Setting", doc.setting ? humanize(doc.setting) : null],
      ["Legal hold", doc.legal_hold ? "Yes" : null],
      ["Personal data erased", doc.personal_data_erased ? "Yes" : null],
      ["Version", String(doc.version)]])),
    section("people-s", "People", mayHistory ? people(history) : h("p", {}, "Your role does not see the people in a case.")),
    section("consent", "Consent", consent(history)),
    section("outcomes", "Desired outcomes", outcomes(history)),
    section("risk", "Risk", risk(history)),
    section("escalations", "Escalations", tracked("Escalations", doc.escalations, [
      ["To", (v) => humanize(v.target)], ["Urgency", (v) => humanize(v.urgency)],
      ["Acknowledge by", (v) => when(v.acknowledgement_due_at)], ["Acknowledged", (v) => yesNo(v.acknowledged)],
      ["Outcome", (v) => (v.final_outcome ? humanize(v.final_outcome) : "")]])),
    section("reviews", "Reviews", tracked("Reviews", doc.reviews, [
      ["Kind", (v) => humanize(v.kind)], ["Due", (v) => v.due_date], ["Completed", (v) => yesNo(v.completed)]])),
    section("actions", "Actions", tracked("Actions", Object.fromEntries(Object.entries(doc.actions || {}).map(([k, done]) => [k, { done, due: (doc.action_due || {})[k] }])), [
      ["Due", (v) => v.due || ""], ["Done", (v) => yesNo(v.done)]])),
    await commandPanel(caseId),
    mayHistory ? section("history", "Decision history", h("p", {}, "Every event, oldest first: who recorded it, in what role, when and why, with its place in the hash chain."), timeline(history, verify)) : null);
}

async function accessLogPage(caseId) {
  const r = await api("GET", `/v1/cases/${encodeURIComponent(caseId)}/access-log`);
  const reads = r.body.reads || [];
  show(`Access log of ${caseId}`,
    h("h1", {}, "Access log"),
    h("p", {}, "Case ", h("a", { class: "mono", href: `#/case/${encodeURIComponent(caseId)}` }, caseId)),
    h("p", {}, "Who read this case, when, and what they read. Opening this page is recorded too."),
    h("div", { class: "table-wrap" }, h("table", { class: "stack", id: "access-log" },
      h("thead", {}, h("tr", {}, ["When", "Who", "Role", "What"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, reads.map((x) => h("tr", {},
        h("td", { "data-label": "When" }, when(x.when)),
        h("td", { "data-label": "Who" }, (x.who && x.who.id) || ""),
        h("td", { "data-label": "Role" }, humanize((x.who && x.who.role) || "")),
        h("td", { "data-label": "What" }, `${humanize(x.what || "")} (version ${x.version})`)))))));
}
