// The console's entry: who is signed in, the navigation for their role, and
// the pages by address (#/report, #/my-reports, ...). Pages live in their
// own modules; each exports functions that render into <main>.
import { api, h, show, session, onSessionEnded, ApiError, announce, showErrors, clearErrors, roleName } from "/console/ui.js";
import { reportPage, myReportsPage } from "/console/report.js";
import { caseloadPage } from "/console/caseload.js";
import { casePage } from "/console/case.js";
import { overviewPage, governanceViewPage, samplePage, replayPage } from "/console/review.js";
import { adminPage } from "/console/admin.js";

// Pages by route, with who may open them (a `reads` or `commands` ability
// from GET /v1/session) and their place in the navigation; the first a
// person may open is their home.
const pages = [
  { path: "/caseload", title: "Caseload", needs: (s) => s.role !== "reporter" && s.reads.includes("case_list"), render: caseloadPage },
  { path: "/case", title: "Case", nav: false, needs: (s) => s.role !== "reporter" && s.reads.includes("case_state"), render: casePage },
  { path: "/overview", title: "Governance", needs: (s) => s.reads.includes("governance"), render: overviewPage },
  { path: "/governance", title: "Oversight view", nav: false, needs: (s) => s.reads.includes("governance"), render: governanceViewPage },
  { path: "/sample", title: "Audit sample", needs: (s) => s.reads.includes("governance"), render: samplePage },
  { path: "/replay", title: "Replay", nav: false, needs: (s) => s.reads.includes("case_replay"), render: replayPage },
  { path: "/report", title: "Report a concern", needs: (s) => s.commands.includes("report"), render: reportPage },
  { path: "/my-reports", title: "My reports", needs: (s) => s.role === "reporter", render: myReportsPage },
  { path: "/admin", title: "Administration", needs: (s) => s.reads.includes("admin"), render: adminPage },
];

function homeFor(s) {
  const first = pages.find((p) => p.nav !== false && p.needs(s));
  return first ? first.path : "/home";
}

function renderNav() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const s = session.current;
  if (!s) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const here = location.hash.replace(/^#/, "").split("?")[0];
  nav.replaceChildren(h("ul", {}, pages.filter((p) => p.nav !== false && p.needs(s)).map((p) =>
    h("li", {}, h("a", { href: `#${p.path}`, "aria-current": here === p.path ? "page" : null }, p.title)))));
  who.replaceChildren(
    h("span", {}, `${s.actor_id} (${roleName(s.role)})`),
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try { await api("DELETE", "/v1/session"); } catch (e) { /* ended already */ }
  session.current = null;
  location.hash = "#/sign-in";
  signInPage("You have signed out.");
}

function signInPage(message) {
  renderNav();
  const form = h("form", { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const token = form.querySelector("#token").value.trim();
    try {
      const r = await api("POST", "/v1/session", { token });
      session.current = r.body;
      form.reset();
      const back = sessionStorage.getItem("caseledger.after-sign-in");
      sessionStorage.removeItem("caseledger.after-sign-in");
      location.hash = `#${back && back !== "/sign-in" ? back : homeFor(r.body)}`;
      route();
    } catch (e) {
      if (e.status === 401) {
        e.problem = { errors: [{ pointer: "/token", detail: "That token is not known, or it has been revoked. Check it, or ask your administrator for a new one." }] };
      }
      showErrors(form, e);
    }
  } },
  h("div", { class: "field", "data-pointer": "/token" },
    h("label", { for: "token" }, "Your access token"),
    h("span", { class: "hint", id: "token-hint" }, "Your administrator gave you a token that begins with clt_. It is kept by the server, not by this page."),
    h("input", { id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false", "aria-describedby": "token-hint" })),
  h("button", { type: "submit" }, "Sign in"));
  show("Sign in",
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "notice", role: "status" }, message) : null,
    form);
}

function homePage() {
  const s = session.current;
  show("Signed in",
    h("h1", {}, "Signed in"),
    h("p", {}, `You are signed in as ${s.actor_id}, ${roleName(s.role)}.`),
    s.role === "integration"
      ? h("p", {}, "Integrations read the anonymised learning feed through the API (GET /v1/learning/feed) with their token; the console has nothing more for this role.")
      : h("p", {}, "This role has nothing to do in the console."));
}

export async function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  if (!session.current) {
    try {
      session.current = (await api("GET", "/v1/session")).body;
    } catch (e) {
      if (path && path !== "/sign-in") sessionStorage.setItem("caseledger.after-sign-in", path);
      signInPage(e instanceof ApiError && e.status === 401 ? null : e.message);
      return;
    }
  }
  const s = session.current;
  renderNav();
  if (!path || path === "/" || path === "/sign-in") {
    location.replace(`#${homeFor(s)}`);
    return;
  }
  const params = new URLSearchParams(query || "");
  const page = pages.find((p) => path === p.path || path.startsWith(`${p.path}/`));
  if (path === "/home") return homePage();
  if (!page || !page.needs(s)) {
    show("Not available", h("h1", {}, "This page is not available"),
      h("p", {}, "Either it does not exist, or your role cannot open it."),
      h("p", {}, h("a", { href: `#${homeFor(s)}` }, "Go to your first page")));
    return;
  }
  try {
    await page.render({ path, params, rest: path.slice(page.path.length + 1) });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    show("Something went wrong", h("h1", {}, "Something went wrong"),
      h("p", {}, e.message), h("p", {}, "Nothing you had not sent was lost. Reload the page to try again."));
  }
}

onSessionEnded(() => {
  const path = location.hash.replace(/^#/, "").split("?")[0];
  if (path) sessionStorage.setItem("caseledger.after-sign-in", path);
  signInPage("Your session has ended (signed out, idle for too long, or your access was revoked). Sign in again to go on.");
  announce("Your session has ended.");
});

window.addEventListener("hashchange", route);
route();
