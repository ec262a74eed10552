// The governance reviewer's pages: the overview with its counts drawn as
// charts (each with the same figures as a table), every oversight view,
// the month's audit sample, and the replay of a case as a stepper from its
// first event to its last, with the state at each step and what changed.
import { api, h, show, humanize, when, roleName, eventName, STAGES } from "/console/ui.js";

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

// A horizontal bar chart of {label: count}: an SVG for the eye, described
// by its title, and the same figures in a table for everyone.
function barChart(id, title, counts, order) {
  const entries = (order || Object.keys(counts)).map((k) => [k, counts[k] || 0]);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  // Drawn at about its own size in a two-column layout, and no smaller
  // than three quarters of it at 320px: its labels stay readable.
  const row = 30;
  const labelWidth = 150;
  const width = 380;
  const svg = s("svg", { viewBox: `0 0 ${width} ${entries.length * row + 8}`, role: "img", "aria-labelledby": `${id}-t`, class: "chart", focusable: "false" },
    s("title", { id: `${id}-t` }, `${title}: ${entries.map(([k, v]) => `${humanize(k)} ${v}`).join(", ")}`),
    ...entries.map(([k, v], i) => {
      const w = Math.round(((width - labelWidth - 40) * v) / max);
      return s("g", { transform: `translate(0 ${i * row + 4})` },
        s("text", { x: labelWidth - 6, y: 18, "text-anchor": "end", class: "chart__label" }, humanize(k).slice(0, 18)),
        s("rect", { x: labelWidth, y: 3, width: Math.max(w, v > 0 ? 2 : 0), height: row - 10, class: "chart__bar" }),
        s("text", { x: labelWidth + w + 6, y: 18, class: "chart__value" }, String(v)));
    }));
  return h("figure", { class: "chart-figure", id },
    h("figcaption", {}, h("h3", {}, title)),
    svg,
    h("details", {}, h("summary", {}, `${title}: the figures`),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Cases"))),
        h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("td", {}, humanize(k)), h("td", {}, String(v))))))));
}

export async function overviewPage() {
  const o = (await api("GET", "/v1/governance/overview")).body;
  const months = Object.keys(o.cases_reported_by_month || {}).sort().slice(-12);
  // The oversight views are the overview's entries that have a count.
  const views = Object.keys(o).filter((k) => o[k] && typeof o[k] === "object" && "count" in o[k]);
  show("Governance overview",
    h("h1", {}, "Governance overview"),
    h("p", {}, `As of ${when(o.as_of)}. Counts only: opening this page reads no case.`),
    h("h2", {}, "What needs attention"),
    h("div", { class: "table-wrap" }, h("table", { id: "views" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "View"), h("th", { scope: "col" }, "Items"))),
      h("tbody", {}, views.map((v) => h("tr", {},
        h("td", {}, h("a", { href: `#/governance/${v}` }, humanize(v.replace(/-/g, "_")))),
        h("td", {}, String(o[v].count), o[v].overdue ? ` (${o[v].overdue} overdue)` : "")))))),
    h("p", {}, h("a", { href: "#/sample" }, "This month's audit sample")),
    h("h2", {}, "Counts over time"),
    h("div", { class: "charts" },
      barChart("chart-month", "Cases reported by month", o.cases_reported_by_month || {}, months),
      barChart("chart-stage", "Cases by stage", o.cases_by_stage || {}, STAGES),
      barChart("chart-age", "Open cases by age", o.open_cases_by_age || {}, ["under_7_days", "7_to_30_days", "over_30_days"]),
      barChart("chart-category", "Cases by category", o.cases_by_category || {})));
}

function cell(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "boolean") return v ? "Yes" : "No";
  if (typeof v === "object") return JSON.stringify(v);
  if (/^\d{4}-\d{2}-\d{2}T/.test(String(v))) return when(v);
  return humanize(v);
}

export async function governanceViewPage({ rest }) {
  const view = decodeURIComponent(rest);
  const r = (await api("GET", `/v1/governance/${encodeURIComponent(view)}`)).body;
  const items = r.items || [];
  const keys = Array.from(new Set(items.flatMap((i) => Object.keys(i)))).filter((k) => k !== "case_id");
  show(humanize(view.replace(/-/g, "_")),
    h("h1", {}, humanize(view.replace(/-/g, "_"))),
    h("p", {}, h("a", { href: "#/overview" }, "Back to the overview")),
    items.length === 0 ? h("p", {}, "Nothing here.") : h("div", { class: "table-wrap" }, h("table", { class: "stack", id: "view-items" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Case"), keys.map((k) => h("th", { scope: "col" }, humanize(k))))),
      h("tbody", {}, items.map((i) => h("tr", {},
        h("td", { "data-label": "Case" }, h("a", { class: "mono", href: `#/replay/${encodeURIComponent(i.case_id)}` }, i.case_id)),
        keys.map((k) => h("td", { "data-label": humanize(k) }, cell(i[k])))))))));
}

export async function samplePage({ params }) {
  const month = params.get("month") || new Date().toISOString().slice(0, 7);
  const r = (await api("GET", `/v1/governance/sample?month=${encodeURIComponent(month)}`)).body;
  const form = h("form", { onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/sample?month=${form.querySelector("#month").value}`; } },
    h("div", { class: "field" }, h("label", { for: "month" }, "Month"), h("input", { id: "month", type: "month", value: month })),
    h("button", { type: "submit" }, "Draw the sample"));
  show("Audit sample",
    h("h1", {}, `Audit sample for ${month}`),
    form,
    h("p", {}, `${(r.cases || []).length} of ${r.population} cases reported that month, drawn reproducibly (seed ${r.seed}).`),
    h("ul", { id: "sample" }, (r.cases || []).map((c) => h("li", {},
      h("a", { class: "mono", href: `#/replay/${encodeURIComponent(c.case_id)}` }, c.case_id), ` (${humanize(c.stratum)})`))));
}

// A readable line for one JSON Patch operation.
function change(op) {
  const field = humanize(op.path.split("/").filter(Boolean).join(" › ").replace(/_/g, " "));
  const value = (v) => (typeof v === "object" ? JSON.stringify(v) : String(v));
  if (op.op === "add") return `${field}: set to ${value(op.value)}`;
  if (op.op === "remove") return `${field}: removed`;
  return `${field}: now ${value(op.value)}`;
}

export async function replayPage({ rest }) {
  const caseId = decodeURIComponent(rest);
  const r = (await api("GET", `/v1/cases/${encodeURIComponent(caseId)}/replay/steps`)).body;
  const steps = r.steps || [];
  if (steps.length === 0) {
    show("Replay", h("h1", {}, "Replay"), h("p", {}, "This case has no events."));
    return;
  }
  let at = 0;
  const status = h("p", { id: "replay-position", "aria-live": "polite" });
  const body = h("div", { id: "replay-step" });
  const slider = h("input", { type: "range", id: "replay-slider", min: 1, max: steps.length, value: 1, "aria-label": "Step" });
  const buttons = {
    first: h("button", { type: "button", class: "secondary", id: "replay-first" }, "First"),
    prev: h("button", { type: "button", class: "secondary", id: "replay-prev" }, "Previous"),
    next: h("button", { type: "button", class: "secondary", id: "replay-next" }, "Next"),
    last: h("button", { type: "button", class: "secondary", id: "replay-last" }, "Last"),
  };
  const render = () => {
    const step = steps[at];
    slider.value = String(at + 1);
    status.textContent = `Step ${at + 1} of ${steps.length}`;
    buttons.first.disabled = buttons.prev.disabled = at === 0;
    buttons.next.disabled = buttons.last.disabled = at === steps.length - 1;
    const who = step.who || {};
    body.replaceChildren(
      h("h2", {}, `${step.version}. ${eventName(step.type)}`),
      h("p", {}, `${who.id || ""}${who.role ? `, ${roleName(who.role)}` : ""}, ${when(step.recorded_at)}`),
      step.why ? h("p", {}, "Why: ", typeof step.why === "string" ? step.why : JSON.stringify(step.why)) : null,
      h("h3", {}, "What changed"),
      (step.changes || []).length ? h("ul", { id: "replay-changes" }, step.changes.map((c) => h("li", {}, change(c)))) : h("p", {}, "Nothing in the case's state."),
      h("details", {}, h("summary", {}, "The case as it stood after this step"),
        h("pre", { class: "state" }, JSON.stringify(step.state_after, null, 2))));
  };
  const go = (i) => { at = Math.max(0, Math.min(steps.length - 1, i)); render(); };
  buttons.first.addEventListener("click", () => go(0));
  buttons.prev.addEventListener("click", () => go(at - 1));
  buttons.next.addEventListener("click", () => go(at + 1));
  buttons.last.addEventListener("click", () => go(steps.length - 1));
  slider.addEventListener("input", () => go(Number(slider.value) - 1));
  show(`Replay of ${caseId}`,
    h("h1", {}, "Replay of case ", h("span", { class: "mono" }, caseId)),
    h("p", {}, "The case event by event, as it stood after each. Opening the replay is recorded in the case's access log."),
    h("div", { class: "stepper" }, buttons.first, buttons.prev, slider, buttons.next, buttons.last),
    status,
    body);
  render();
}
