// The reporter's pages: the report form (the statement's Appendix A), its
// confirmation, and "my reports".
import { api, h, show, humanize, vocabulary, newKey, showErrors, clearErrors, when, announce } from "/console/ui.js";

const KINDS = {
  concern: ["A concern", "Something that worried you about someone's safety or wellbeing."],
  incident: ["An incident", "Something that happened and caused, or could have caused, harm."],
  near_miss: ["A near miss", "Something that nearly caused harm, so that we can learn from it."],
  good_practice: ["Good practice", "Something that went well and others could learn from."],
  whistleblowing: ["Whistle-blowing", "Poor practice, corruption or harassment in how things are run."],
};
const ROLE_WORDS = {
  person_affected: "The person affected",
  person_alleged_to_cause_harm: "Person alleged to have caused harm",
  witness: "Witness",
  reporter: "Me (the reporter)",
  other: "Other",
};
const AGE_WORDS = { under_18: "Under 18", not_known: "Not known" };
const NOT_TOLD = {
  telling_would_increase_risk: "Telling them would increase the risk to them",
  could_not_be_contacted: "They could not be contacted",
  not_yet_possible: "It has not been possible yet",
  lacks_capacity: "They may lack capacity to understand it",
  other: "Another reason",
};

// A yes/no question as two radio buttons; `onchange` gets true or false.
function yesNo(name, pointer, legend, hint, onchange) {
  const hintId = hint ? `${name}-hint` : null;
  const radio = (value, label) => h("div", { class: "choice" },
    h("input", { type: "radio", id: `${name}-${value}`, name, value, "aria-describedby": hintId,
      onchange: () => onchange && onchange(value === "yes") }),
    h("label", { for: `${name}-${value}` }, label));
  return h("fieldset", { class: "field", "data-pointer": pointer, id: `${name}-field` },
    h("legend", {}, legend),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    h("div", { class: "choices choices--inline" }, radio("yes", "Yes"), radio("no", "No")));
}

function checkboxes(name, pointer, legend, hint, options) {
  const hintId = hint ? `${name}-hint` : null;
  return h("fieldset", { class: "field", "data-pointer": pointer, id: `${name}-field` },
    h("legend", {}, legend),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    h("div", { class: "choices" }, options.map(([value, label]) => h("div", { class: "choice" },
      h("input", { type: "checkbox", id: `${name}-${value}`, name, value, "aria-describedby": hintId }),
      h("label", { for: `${name}-${value}` }, label)))));
}

function textField(id, pointer, label, hint, { multiline = false, type = "text", autocomplete = "off" } = {}) {
  const hintId = hint ? `${id}-hint` : null;
  const control = multiline
    ? h("textarea", { id, name: id, rows: 6, "aria-describedby": hintId, spellcheck: "true" })
    : h("input", { id, name: id, type, autocomplete, "aria-describedby": hintId });
  return h("div", { class: "field", "data-pointer": pointer, id: `${id}-field` },
    h("label", { for: id }, label),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    control);
}

function selectField(id, pointer, label, hint, options, blank = "Choose one") {
  const hintId = hint ? `${id}-hint` : null;
  return h("div", { class: "field", "data-pointer": pointer, id: `${id}-field` },
    h("label", { for: id }, label),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    h("select", { id, name: id, "aria-describedby": hintId },
      h("option", { value: "" }, blank),
      options.map(([value, text]) => h("option", { value }, text))));
}

function radioValue(form, name) {
  const checked = form.querySelector(`input[name="${name}"]:checked`);
  return checked ? checked.value === "yes" : undefined;
}
function checkedValues(root, name) {
  return Array.from(root.querySelectorAll(`input[name="${name}"]:checked`), (c) => c.value);
}
function textValue(root, id) {
  const el = root.querySelector(`#${id}`);
  const v = el ? el.value.trim() : "";
  return v === "" ? undefined : v;
}

// One person involved: a fieldset whose fields point into
// /people_involved/N.
function personFieldset(index, roleCodes, ageBands, onRemove) {
  const n = index + 1;
  const base = `/people_involved/${index}`;
  const id = (f) => `p${index}-${f}`;
  const set = h("fieldset", { class: "person field", "data-pointer": base, id: `p${index}-field` },
    h("legend", {}, `Person ${n}`),
    textField(id("name"), `${base}/name`, "Name (if known, and they agree to it being recorded)", null, { autocomplete: "off" }),
    textField(id("description"), `${base}/description`, "How to recognise them, if there is no name", "For example their screen name in an online session."),
    checkboxes(id("roles"), `${base}/roles`, "Their part in what happened", "Choose all that apply.",
      roleCodes.map((r) => [r, ROLE_WORDS[r] || humanize(r)])),
    selectField(id("age"), `${base}/age_band`, "Age band, if known", null,
      ageBands.map((a) => [a, AGE_WORDS[a] || a.replace("_plus", " or over").replace("_", "–")]), "Not given"),
    textField(id("email"), `${base}/contact/email`, "E-mail (optional)", null, { type: "email" }),
    textField(id("phone"), `${base}/contact/phone`, "Telephone (optional)", null, { type: "tel" }),
    index > 0 ? h("button", { type: "button", class: "secondary", onclick: onRemove }, `Remove person ${n}`) : null);
  return set;
}

function personValue(set, index) {
  const id = (f) => `p${index}-${f}`;
  const p = { roles: checkedValues(set, id("roles")) };
  const name = textValue(set, id("name"));
  if (name) p.name = name;
  const description = textValue(set, id("description"));
  if (description) p.description = description;
  const age = set.querySelector(`#${id("age")}`).value;
  if (age) p.age_band = age;
  const contact = {};
  const email = textValue(set, id("email"));
  if (email) contact.email = email;
  const phone = textValue(set, id("phone"));
  if (phone) contact.phone = phone;
  if (Object.keys(contact).length) p.contact = contact;
  return p;
}

// datetime-local gives local wall time without an offset; the API wants
// RFC 3339 with one.
function toRfc3339(local) {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export async function reportPage() {
  const [settings, categories, roleCodes, ageBands] = await Promise.all([
    vocabulary("setting"), vocabulary("harm_category"), vocabulary("role_in_case"), vocabulary("age_band")]);
  const key = newKey();  // one per form: a resubmission cannot make a second case
  let people = 1;

  const riskWarning = h("div", { class: "warning", role: "alert", hidden: true, id: "risk-warning" },
    h("strong", {}, "If anyone is in immediate danger, call 999 first."),
    "Then come back and finish this report. Say below what was done to reduce the risk.");
  const under18Note = h("div", { class: "notice", hidden: true, id: "under18-note" },
    "Someone under 18 is involved: the children's safeguarding policy applies. The Designated Safeguarding Lead will follow it; report here as well.");
  const notCalledReason = textField("not-called", "/emergency_services_not_called_reason",
    "Why were emergency services not called?", "A short reason: for example, the risk was removed at once.");
  const actionsTaken = textField("actions", "/actions_taken", "What was done to remove or reduce the risk, and by whom?", null, { multiline: true });
  const notToldReason = selectField("not-told", "/person_affected_not_told_reason",
    "Why do they not know?", null, Object.entries(NOT_TOLD));
  const hostName = textField("host", "/host_organisation_name", "Name of the host organisation", null);
  const otherDescription = textField("other-category", "/other_category_description", "Describe the other kind of harm", null);
  [notCalledReason, actionsTaken, notToldReason, hostName, otherDescription].forEach((f) => { f.hidden = true; });

  const updateRisk = () => {
    const risk = radioValue(form, "risk");
    const called = radioValue(form, "called");
    riskWarning.hidden = risk !== true;
    notCalledReason.hidden = !(risk === true && called === false);
    actionsTaken.hidden = !(risk === true || called === true);
  };

  const peopleList = h("div", { id: "people" });
  const addPerson = () => {
    const index = people;
    people += 1;
    const set = personFieldset(index, roleCodes, ageBands, () => {
      set.remove();
      announce(`Person ${index + 1} removed`);
    });
    peopleList.appendChild(set);
    set.querySelector("input").focus();
  };
  peopleList.appendChild(personFieldset(0, roleCodes, ageBands));

  const categoryBoxes = checkboxes("categories", "/categories", "What kind of harm was it?",
    "Choose all that apply. For good practice or a near miss you may leave this empty.",
    categories.map((c) => [c, humanize(c)]));
  categoryBoxes.addEventListener("change", () => {
    otherDescription.hidden = !checkedValues(form, "categories").includes("other");
  });
  const settingSelect = selectField("setting", "/setting", "Where did it happen?", null, settings.map((s) => [s, humanize(s)]));
  settingSelect.querySelector("select").addEventListener("change", (ev) => {
    hostName.hidden = ev.target.value !== "host_organisation";
  });

  const form = h("form", { novalidate: true, id: "report-form" },
    h("fieldset", { class: "field", "data-pointer": "/kind", id: "kind-field" },
      h("legend", {}, "What are you reporting?"),
      h("div", { class: "choices" }, Object.entries(KINDS).map(([value, [label, hint]]) => h("div", { class: "choice" },
        h("input", { type: "radio", id: `kind-${value}`, name: "kind", value, "aria-describedby": `kind-${value}-hint` }),
        h("label", { for: `kind-${value}` }, h("strong", {}, label), h("span", { class: "hint", id: `kind-${value}-hint` }, hint)))))),
    yesNo("risk", "/immediate_risk", "Is anyone at immediate risk of harm?",
      "Harm, violence, or incitement to violence or hate, happening now or about to.", updateRisk),
    riskWarning,
    yesNo("called", "/emergency_services_called", "Were emergency services (999) called?", null, updateRisk),
    notCalledReason,
    actionsTaken,
    textField("occurred", "/occurred_at", "When did it happen (or begin)?", "Your best estimate is fine.", { type: "datetime-local" }),
    h("div", { class: "choice field" },
      h("input", { type: "checkbox", id: "approximate", name: "approximate" }),
      h("label", { for: "approximate" }, "This time is an estimate")),
    settingSelect,
    hostName,
    h("h2", {}, "The people involved"),
    h("p", { class: "hint" }, "Include the person affected, anyone who may have caused harm, and any witnesses. Give only what you know."),
    peopleList,
    h("button", { type: "button", class: "secondary", onclick: addPerson }, "Add another person"),
    h("h2", {}, "What happened"),
    textField("facts", "/facts", "What happened?",
      "The facts: what you saw, heard or were told, and who said what. Avoid opinions and conclusions.", { multiline: true }),
    textField("own-words", "/persons_own_words", "What the person affected said, in their own words (if they said anything)",
      "Write down exactly what they said, as near as you can.", { multiline: true }),
    categoryBoxes,
    otherDescription,
    h("details", {},
      h("summary", {}, "Where the risk was, and where it came from (if you know)"),
      checkboxes("locations", "/sac_locations_of_risk", "Location of the risk", null,
        [], /* filled below */),
      checkboxes("sources", "/sac_sources_of_risk", "Source of the risk", null, [])),
    yesNo("under18", "/under_18_involved", "Is anyone under 18 involved?", null, (yes) => { under18Note.hidden = !yes; }),
    under18Note,
    yesNo("knows", "/person_affected_knows", "Does the person affected know you are making this report?", null,
      (yes) => { notToldReason.hidden = yes; }),
    notToldReason,
    textField("confidentiality", "/confidentiality_wishes", "What do they (or you) want kept confidential, and from whom?",
      "Talk about confidentiality with the person if you can. Information is shared only as far as it must be.", { multiline: true }),
    h("button", { type: "submit" }, "Send the report"));

  // The SAC vocabularies fill the two lists inside <details>.
  const [locations, sources] = await Promise.all([vocabulary("sac_location_of_risk"), vocabulary("sac_source_of_risk")]);
  form.querySelector("#locations-field").replaceWith(checkboxes("locations", "/sac_locations_of_risk", "Location of the risk", null, locations.map((c) => [c, humanize(c)])));
  form.querySelector("#sources-field").replaceWith(checkboxes("sources", "/sac_sources_of_risk", "Source of the risk", null, sources.map((c) => [c, humanize(c)])));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = reportBody(form, peopleList);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const r = await api("POST", "/v1/cases", body, { "Idempotency-Key": key });
      confirmation(r.body.case_id, body);
    } catch (e) {
      button.disabled = false;
      showErrors(form, e);
    }
  });

  show("Report a concern",
    h("h1", {}, "Report a concern"),
    h("p", {}, "Everything you write here goes to the Designated Safeguarding Lead, is kept securely, and is shared only as far as it must be."),
    form);
}

function reportBody(form, peopleList) {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const body = {
    kind: (form.querySelector('input[name="kind"]:checked') || {}).value,
    occurred_at: toRfc3339(form.querySelector("#occurred").value),
    reported_at: now,
    reported_via: "report_form",
    setting: form.querySelector("#setting").value || undefined,
    // Each person's fields are named by the index they were added with; a
    // removed person leaves a gap there, so refs follow the order on the
    // page: person-1, person-2, ...
    people_involved: Array.from(peopleList.querySelectorAll("fieldset.person"), (set, i) => ({
      person_ref: `person-${i + 1}`,
      ...personValue(set, Number(set.id.replace(/^p(\d+)-field$/, "$1"))),
    })),
    facts: textValue(form, "facts"),
    persons_own_words: textValue(form, "own-words"),
    categories: checkedValues(form, "categories"),
    sac_locations_of_risk: checkedValues(form, "locations"),
    sac_sources_of_risk: checkedValues(form, "sources"),
    immediate_risk: radioValue(form, "risk"),
    emergency_services_called: radioValue(form, "called"),
    person_affected_knows: radioValue(form, "knows"),
    under_18_involved: radioValue(form, "under18"),
    confidentiality_wishes: textValue(form, "confidentiality"),
  };
  if (form.querySelector("#approximate").checked) body.occurred_at_approximate = true;
  if (!form.querySelector("#host-field").hidden) body.host_organisation_name = textValue(form, "host");
  if (!form.querySelector("#other-category-field").hidden) body.other_category_description = textValue(form, "other-category");
  if (!form.querySelector("#not-called-field").hidden) body.emergency_services_not_called_reason = textValue(form, "not-called");
  if (!form.querySelector("#actions-field").hidden) body.actions_taken = textValue(form, "actions");
  if (!form.querySelector("#not-told-field").hidden) {
    body.person_affected_not_told_reason = form.querySelector("#not-told").value || undefined;
  }
  return JSON.parse(JSON.stringify(body));  // drops the undefined answers
}

function confirmation(caseId, body) {
  show("Report sent",
    h("div", { class: "confirmation" },
      h("h1", {}, "Your report has been sent"),
      h("p", {}, "Its reference is"),
      h("p", { class: "reference", id: "case-reference" }, caseId)),
    h("p", {}, body.immediate_risk
      ? "You said someone was at immediate risk, so it is marked urgent for the Designated Safeguarding Lead."
      : "The Designated Safeguarding Lead will take it up."),
    h("p", {}, "Keep the reference if you may need to ask about it. You can see where it stands in ",
      h("a", { href: "#/my-reports" }, "my reports"), "."),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: () => reportPage() }, "Make another report")));
}

export async function myReportsPage() {
  const r = await api("GET", "/v1/cases?limit=100");
  const rows = r.body.cases || [];
  show("My reports",
    h("h1", {}, "My reports"),
    rows.length === 0
      ? h("p", {}, "You have not made any reports yet.")
      : h("div", { class: "table-wrap" }, h("table", { class: "stack" },
        h("caption", {}, `${rows.length} report${rows.length === 1 ? "" : "s"}, newest last`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Reference"), h("th", { scope: "col" }, "Reported"), h("th", { scope: "col" }, "Where it stands"))),
        h("tbody", {}, rows.map((c) => h("tr", {},
          h("td", { class: "mono", "data-label": "Reference" }, c.case_id),
          h("td", { "data-label": "Reported" }, when(c.reported_at)),
          h("td", { "data-label": "Where it stands" }, humanize(c.stage))))))),
    h("p", {}, "You see where your reports stand; what is decided about the people in them stays with those who lead the case."));
}
