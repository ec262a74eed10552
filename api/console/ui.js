// Shared by every page of the console: talking to the API, building the
// page, and showing errors at their fields.
//
// Contract: text from the server or the user only ever reaches the page as
// a text node or an attribute value (h() below); nothing is parsed as HTML,
// so a script typed into a free-text field is shown as text and never runs.

// The signed-in person ({actor_id, role, commands, reads}), or null.
export const session = { current: null };

// Raised for every answer that is not 2xx: the problem document and status.
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// Listeners told when the session has ended (any 401).
const endedListeners = [];
export function onSessionEnded(fn) { endedListeners.push(fn); }

// Calls the API with the session cookie. `body` is sent as JSON. Returns
// {status, headers, body} for 2xx; throws ApiError otherwise.
export async function api(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: "No connection",
      detail: "The server could not be reached. Nothing was sent; try again." });
  }
  const text = await res.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch (e) { parsed = { detail: text }; }
  }
  if (res.status === 401 && path !== "/v1/session") {
    session.current = null;
    endedListeners.forEach((fn) => fn());
  }
  if (!res.ok) throw new ApiError(res.status, parsed);
  return { status: res.status, headers: res.headers, body: parsed };
}

// Builds an element: h("p", {class: "x"}, "text", child, ...). Attributes
// starting with "on" are listeners; strings become text nodes; null and
// false children are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces the main content, sets the title, and moves focus to the page's
// heading so that a screen reader announces the new page.
export function show(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(...content.flat().filter(Boolean));
  document.title = `${title} – caseledger`;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// "near_miss" -> "Near miss"; codes the console has no words for read as
// themselves, made readable.
export function humanize(code) {
  const s = String(code).replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// "ConcernReported" -> "Concern reported".
export function eventName(type) {
  return humanize(String(type).replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase());
}

// "assign-lead" -> "Assign lead".
export function commandName(command) {
  return humanize(String(command).replace(/-/g, "_"));
}

// A case's stages, in the order a case moves through them.
export const STAGES = ["reported", "acknowledged", "open", "triaged_out", "closed"];

export function roleName(role) {
  return {
    reporter: "reporter", dsl: "Designated Safeguarding Lead",
    alt_dsl: "alternative DSL", reviewer: "governance reviewer",
    integration: "integration", admin: "administrator",
  }[role] || humanize(role || "");
}

// A date-time as the reader's locale shows it (UK by default).
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

// A schema file (cached): for the vocabularies forms offer.
const schemas = new Map();
export async function schema(file) {
  if (!schemas.has(file)) {
    schemas.set(file, api("GET", `/v1/schemas/${file}`).then((r) => r.body));
  }
  return schemas.get(file);
}
export async function vocabulary(name) {
  const common = await schema("common.v1.json");
  const def = common.definitions && common.definitions[name];
  return (def && def.enum) || [];
}

// A random id for Idempotency-Key: a retried submission finds the case it
// already made instead of making a second.
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// Field errors. Each field's wrapper carries data-pointer (the JSON Pointer
// of its value in the request body) and holds an .error-message slot.
// showErrors marks every field a 400 names, lists them in a summary at the
// top with links to each, and focuses the summary. Pointers below a field's
// own (an item of a list) are shown at the nearest field that has one.
export function clearErrors(form) {
  form.querySelectorAll(".field--error").forEach((f) => f.classList.remove("field--error"));
  form.querySelectorAll(".error-message").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  const summary = form.parentNode && form.parentNode.querySelector(".error-summary");
  if (summary) summary.remove();
}

function fieldFor(form, pointer) {
  let p = pointer;
  for (;;) {
    const f = form.querySelector(`[data-pointer="${CSS.escape(p)}"]`);
    if (f) return f;
    if (p === "") return null;
    p = p.slice(0, p.lastIndexOf("/"));
  }
}

export function showErrors(form, error) {
  clearErrors(form);
  const problem = error.problem || {};
  let list = Array.isArray(problem.errors) ? problem.errors : [];
  if (list.length === 0 && problem.pointer !== undefined) {
    list = [{ pointer: problem.pointer, detail: problem.detail }];
  }
  const items = [];
  const shown = new Set();
  for (const e of list) {
    const field = fieldFor(form, e.pointer || "");
    const message = friendly(e.detail || problem.detail || "Check this answer");
    if (field && !shown.has(field)) {
      shown.add(field);
      field.classList.add("field--error");
      const id = `${field.id || (field.id = `f-${Math.random().toString(36).slice(2)}`)}-error`;
      const msg = h("span", { class: "error-message", id }, h("span", { class: "visually-hidden" }, "Error: "), message);
      const label = field.querySelector(":scope > label, :scope > legend");
      if (label) label.after(msg); else field.prepend(msg);
      const control = field.querySelector("input, select, textarea");
      if (control) {
        control.setAttribute("aria-invalid", "true");
        const described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (!described.includes(id)) described.push(id);
        control.setAttribute("aria-describedby", described.join(" "));
      }
      const target = control || field;
      const asked = question(field);
      items.push(h("li", {}, h("a", { href: `#${target.id || field.id}`,
        onclick: (ev) => { ev.preventDefault(); target.focus(); } }, asked ? `${asked}: ${message}` : message)));
    } else if (!field) {
      items.push(h("li", {}, message));
    }
  }
  if (items.length === 0) items.push(h("li", {}, friendly(problem.detail || error.message)));
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", {}, "There is a problem"), h("ul", {}, items));
  form.before(summary);
  summary.focus();
}

// The server's detail reads "/field: why", in a schema validator's words;
// the form already shows which field, so the pointer is dropped and the
// validator's words are put plainly.
const PLAIN = [
  [/^Missing required property/, () => "Answer this question."],
  [/no fewer than (\d+) element/, (m) => (m[1] === "1" ? "Choose at least one." : `Give at least ${m[1]}.`)],
  [/no more than (\d+) element/, (m) => `Give at most ${m[1]}.`],
  [/enum values/, () => "Choose one of the options."],
  [/should be no shorter than/, () => "This cannot be empty."],
  [/should be no longer than (\d+)/, (m) => `This is too long: at most ${m[1]} characters.`],
  [/match (the )?(regex )?pattern|format/i, () => "This is not in the expected form."],
  [/unique/i, () => "Each answer may be given only once."],
];
export function friendly(detail) {
  const text = String(detail).replace(/^\/[^:]*:\s*/, "");
  for (const [re, say] of PLAIN) {
    const m = text.match(re);
    if (m) return say(m);
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// The words of the question a field asks (its label or legend), for the
// error summary.
function question(field) {
  const l = field.querySelector(":scope > label, :scope > legend");
  if (!l) return "";
  const clone = l.cloneNode(true);
  clone.querySelectorAll(".hint, .optional").forEach((x) => x.remove());
  return clone.textContent.trim();
}
