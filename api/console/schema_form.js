// A form built from an event's JSON Schema, for every command the DSL and
// reviewers send. Each field's wrapper carries data-pointer (its JSON
// Pointer in the body), so the server's 400 lists mark each field.
//
// What the schema says is offered as the right control: an enum as a
// select, a boolean as yes/no, a date as a date input, free text as a text
// area, a list of codes as checkboxes, a list of objects as a repeatable
// group. Conditional rules (if/then) are left to the server, which names
// every field it refuses; the form only drops what was left empty.
import { h, humanize, schema } from "/console/ui.js";

// Fields the server owns (GET /v1/session's server_owned, per command):
// not offered.
let serverOwned = new Set();
// Fields that only repeat who is acting: the server fills them in when left
// empty, so they are optional here whatever the schema says.
const SELF_FILLED = new Set(["decided_by", "reviewer_actor_id", "lead_actor_id", "role"]);

let uid = 0;
const nextId = (base) => `${base.replace(/[^a-zA-Z0-9_-]/g, "-")}-${++uid}`;

async function resolve(node) {
  if (!node || !node.$ref) return node || {};
  const [file, frag] = node.$ref.split("#");
  const doc = await schema(file || "common.v1.json");
  let target = doc;
  for (const part of (frag || "").split("/").filter(Boolean)) target = target[part];
  // Keep the field's own description over the definition's.
  const merged = { ...target, ...node };
  delete merged.$ref;
  return resolve(merged);
}

function label(name, node, required) {
  return [humanize(name), required ? null : h("span", { class: "optional" }, " (optional)")];
}
function hint(node, id) {
  return node.description ? h("span", { class: "hint", id }, node.description) : null;
}

// Builds the control for one schema node at `pointer`; returns {el, read}
// where read() gives the value, or undefined when left empty.
async function build(name, node, pointer, required) {
  node = await resolve(node);
  const id = nextId(pointer || "root");
  const hintId = `${id}-hint`;
  const described = node.description ? hintId : null;
  const type = Array.isArray(node.type) ? node.type[0] : node.type;

  if (node.enum && type !== "array") {
    const select = h("select", { id, "aria-describedby": described },
      h("option", { value: "" }, required ? "Choose one" : "Not given"),
      node.enum.map((v) => h("option", { value: v }, humanize(v))));
    return { el: h("div", { class: "field", "data-pointer": pointer }, h("label", { for: id }, label(name, node, required)), hint(node, hintId), select),
      read: () => (select.value === "" ? undefined : select.value) };
  }
  if (type === "boolean") {
    const group = `${id}-g`;
    const yes = h("input", { type: "radio", name: group, id: `${id}-yes`, value: "yes", "aria-describedby": described });
    const no = h("input", { type: "radio", name: group, id: `${id}-no`, value: "no" });
    return { el: h("fieldset", { class: "field", "data-pointer": pointer },
      h("legend", {}, label(name, node, required)), hint(node, hintId),
      h("div", { class: "choices choices--inline" },
        h("div", { class: "choice" }, yes, h("label", { for: `${id}-yes` }, "Yes")),
        h("div", { class: "choice" }, no, h("label", { for: `${id}-no` }, "No")))),
    read: () => (yes.checked ? true : no.checked ? false : undefined) };
  }
  if (type === "integer" || type === "number") {
    const input = h("input", { type: "number", id, "aria-describedby": described, step: type === "integer" ? "1" : "any" });
    return { el: h("div", { class: "field", "data-pointer": pointer }, h("label", { for: id }, label(name, node, required)), hint(node, hintId), input),
      read: () => (input.value === "" ? undefined : Number(input.value)) };
  }
  if (type === "string") {
    let control;
    let read;
    if (node.format === "date-time") {
      control = h("input", { type: "datetime-local", id, "aria-describedby": described });
      read = () => (control.value ? new Date(control.value).toISOString().replace(/\.\d{3}Z$/, "Z") : undefined);
    } else if (node.format === "date") {
      control = h("input", { type: "date", id, "aria-describedby": described });
      read = () => control.value || undefined;
    } else if ((node.maxLength || 0) > 1000) {
      control = h("textarea", { id, rows: 4, "aria-describedby": described });
      read = () => (control.value.trim() === "" ? undefined : control.value);
    } else {
      control = h("input", { type: node.format === "email" ? "email" : "text", id, autocomplete: "off", "aria-describedby": described });
      read = () => (control.value.trim() === "" ? undefined : control.value.trim());
    }
    return { el: h("div", { class: "field", "data-pointer": pointer }, h("label", { for: id }, label(name, node, required)), hint(node, hintId), control), read };
  }
  if (type === "array") {
    const items = await resolve(node.items || {});
    if (items.enum) {
      const boxes = items.enum.map((v) => h("input", { type: "checkbox", id: `${id}-${v}`, value: v }));
      return { el: h("fieldset", { class: "field", "data-pointer": pointer },
        h("legend", {}, label(name, node, required)), hint(node, hintId),
        h("div", { class: "choices" }, boxes.map((b) => h("div", { class: "choice" }, b, h("label", { for: b.id }, humanize(b.value)))))),
      read: () => { const v = boxes.filter((b) => b.checked).map((b) => b.value); return v.length ? v : undefined; } };
    }
    // A repeatable group: one entry to start with when required.
    const list = h("div", { class: "repeat" });
    const entries = [];
    const fieldset = h("fieldset", { class: "field group", "data-pointer": pointer },
      h("legend", {}, label(name, node, required)), hint(node, hintId), list);
    const add = async () => {
      const index = entries.length;
      const entry = await build(`${humanize(name)} ${index + 1}`, items, `${pointer}/${index}`, true);
      const wrap = h("div", { class: "repeat__item" }, entry.el,
        h("button", { type: "button", class: "secondary", onclick: () => {
          const at = entries.indexOf(record);
          entries.splice(at, 1);
          wrap.remove();
        } }, `Remove ${humanize(name).toLowerCase()} ${index + 1}`));
      const record = { read: entry.read };
      entries.push(record);
      list.appendChild(wrap);
    };
    fieldset.appendChild(h("button", { type: "button", class: "secondary", onclick: add }, `Add ${humanize(name).toLowerCase()}`));
    if (required && (node.minItems || 0) > 0) await add();
    return { el: fieldset,
      read: () => { const v = entries.map((e) => e.read()).filter((x) => x !== undefined); return v.length ? v : undefined; } };
  }
  if (type === "object" || node.properties) {
    const req = new Set(node.required || []);
    const parts = [];
    for (const [key, child] of Object.entries(node.properties || {})) {
      if (pointer === "" && serverOwned.has(key)) continue;
      // decided_by is an identity only where it is a decider (triage,
      // overrides); elsewhere (consent) it says who decided, in words.
      const self = pointer === "" && SELF_FILLED.has(key) &&
        (key !== "role" || node.properties.lead_actor_id) &&
        (key !== "decided_by" || String(child.$ref || "").endsWith("/decider"));
      const part = await build(key, child, `${pointer}/${key}`, req.has(key) && !self);
      part.required = req.has(key) && !self;
      if (self) part.el.querySelector(".hint, label, legend").after(h("span", { class: "hint" }, "Left empty, this is you."));
      parts.push([key, part]);
    }
    const el = pointer === ""
      ? h("div", { "data-pointer": "" }, parts.map(([, p]) => p.el))
      : h("fieldset", { class: "field group", "data-pointer": pointer },
        h("legend", {}, label(name, node, required)), hint(node, hintId), parts.map(([, p]) => p.el));
    const read = () => {
      const out = {};
      for (const [key, p] of parts) {
        const v = p.read();
        if (v !== undefined) out[key] = v;
      }
      return Object.keys(out).length || pointer === "" ? out : undefined;
    };
    // The required answers left empty, in an object that is given at all
    // (the root always is): what the schema's "required" says, before the
    // server checks the rest (conditions, references, the case's state).
    const missing = () => {
      if (pointer !== "" && read() === undefined) return [];
      const out = [];
      for (const [key, p] of parts) {
        if (p.read() === undefined) {
          if (p.required) out.push({ pointer: `${pointer}/${key}`, detail: "Missing required property" });
        } else if (p.missing) {
          out.push(...p.missing());
        }
      }
      return out;
    };
    return { el, read, missing };
  }
  // Anything else (a schema the console has no control for): JSON text.
  const area = h("textarea", { id, rows: 3, "aria-describedby": described });
  return { el: h("div", { class: "field", "data-pointer": pointer }, h("label", { for: id }, label(name, node, required), " (as JSON)"), hint(node, hintId), area),
    read: () => { if (!area.value.trim()) return undefined; try { return JSON.parse(area.value); } catch (e) { return area.value; } } };
}

// The form's fields for the schema file `file`, less the top-level fields
// in `owned` (the server sets them); read() gives the body.
export async function schemaFields(file, owned = []) {
  const root = await schema(file);
  serverOwned = new Set(owned);
  return build("", root, "", true);
}
