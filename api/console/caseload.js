// The caseload: every case the reader may see, filtered by stage, lead,
// urgency, category and overdue acknowledgement, with counts from the
// governance overview (counts only: no case is read to count it).
import { api, h, show, humanize, vocabulary, when, session, STAGES } from "/console/ui.js";

function option(value, label, selected) {
  return h("option", { value, selected: selected === value }, label);
}

export async function caseloadPage({ params }) {
  const filters = {
    stage: params.get("stage") || "",
    lead: params.get("lead") || "",
    urgency: params.get("urgency") || "",
    category: params.get("category") || "",
    overdue: params.get("overdue") || "",
  };
  const query = new URLSearchParams({ limit: "100" });
  for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));

  const mayCount = session.current.reads.includes("governance");
  const [list, overview, categories] = await Promise.all([
    api("GET", `/v1/cases?${query}`),
    mayCount ? api("GET", "/v1/governance/overview").then((r) => r.body).catch(() => null) : null,
    vocabulary("harm_category"),
  ]);
  const byStage = (overview && overview.cases_by_stage) || {};
  const byCategory = (overview && overview.cases_by_category) || {};
  const overdueCount = overview && overview["overdue-acknowledgements"] ? overview["overdue-acknowledgements"].count : null;
  const counted = (label, n) => (n === undefined || n === null ? label : `${label} (${n})`);

  const form = h("form", { class: "panel filters", id: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const el of form.querySelectorAll("select, input")) {
      if (el.type === "checkbox") { if (el.checked) q.set(el.name, el.value); } else if (el.value) q.set(el.name, el.value.trim());
    }
    location.hash = `#/caseload${q.toString() ? `?${q}` : ""}`;
  } },
  h("h2", { class: "visually-hidden" }, "Filters"),
  h("div", { class: "filter-grid" },
    h("div", { class: "field" }, h("label", { for: "f-stage" }, "Stage"),
      h("select", { id: "f-stage", name: "stage" }, option("", "Any stage", filters.stage),
        STAGES.map((s) => option(s, counted(humanize(s), mayCount ? byStage[s] || 0 : null), filters.stage)))),
    h("div", { class: "field" }, h("label", { for: "f-urgency" }, "Urgency"),
      h("select", { id: "f-urgency", name: "urgency" }, option("", "Any", filters.urgency),
        option("urgent", "Urgent", filters.urgency), option("standard", "Standard", filters.urgency))),
    h("div", { class: "field" }, h("label", { for: "f-category" }, "Category"),
      h("select", { id: "f-category", name: "category" }, option("", "Any category", filters.category),
        categories.map((c) => option(c, counted(humanize(c), mayCount ? byCategory[c] || 0 : null), filters.category)))),
    h("div", { class: "field" }, h("label", { for: "f-lead" }, "Lead (actor id)"),
      h("input", { id: "f-lead", name: "lead", type: "text", value: filters.lead, autocomplete: "off" })),
    h("div", { class: "choice field" },
      h("input", { id: "f-overdue", name: "overdue", type: "checkbox", value: "acknowledgement", checked: filters.overdue === "acknowledgement" }),
      h("label", { for: "f-overdue" }, counted("Acknowledgement overdue", overdueCount)))),
  h("button", { type: "submit" }, "Show cases"), " ",
  h("button", { type: "button", class: "secondary", onclick: () => { location.hash = `#/caseload?lead=${encodeURIComponent(session.current.actor_id)}`; } }, "Cases I lead"));

  const rows = list.body.cases || [];
  const next = list.body.next_cursor;
  const nextQuery = new URLSearchParams(query);
  nextQuery.delete("limit");
  if (next) nextQuery.set("cursor", next);
  const table = rows.length === 0
    ? h("p", { id: "caseload-empty" }, "No case matches these filters.")
    : h("div", { class: "table-wrap" }, h("table", { class: "stack", id: "caseload" },
      h("caption", {}, `${rows.length} case${rows.length === 1 ? "" : "s"} on this page`),
      h("thead", {}, h("tr", {}, ["Case", "Stage", "Urgency", "Reported", "Take by", "Lead", "Categories"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((c) => {
        const late = c.stage === "reported" && c.acknowledgement_due_at && new Date(c.acknowledgement_due_at) < new Date();
        return h("tr", {},
          h("td", { "data-label": "Case" }, h("a", { class: "mono", href: `#/case/${encodeURIComponent(c.case_id)}` }, c.case_id)),
          h("td", { "data-label": "Stage" }, humanize(c.stage)),
          h("td", { "data-label": "Urgency" }, c.urgent ? h("strong", {}, "Urgent") : "Standard"),
          h("td", { "data-label": "Reported" }, when(c.reported_at)),
          h("td", { "data-label": "Take by" }, c.stage === "reported" ? [when(c.acknowledgement_due_at), late ? h("strong", { class: "overdue" }, " (overdue)") : null] : "—"),
          h("td", { "data-label": "Lead" }, c.lead_actor_id || "None yet"),
          h("td", { "data-label": "Categories" }, (c.categories || []).map(humanize).join(", ")));
      }))));

  show("Caseload",
    h("h1", {}, "Caseload"),
    form,
    table,
    next ? h("p", {}, h("a", { href: `#/caseload?${nextQuery}` }, "Next page")) : null,
    h("p", { class: "hint" }, "Opening this list is recorded in each listed case's access log."));
}
