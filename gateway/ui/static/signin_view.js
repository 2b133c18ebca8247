// Sign-in: an API key and a namespace, kept in sessionStorage for this tab only. The form
// never submits anywhere (the page's CSP has form-action 'none'): the key cannot end up in a
// URL, and so in no server's access log.

import { el, replace } from "./dom.js";
import { saveSession } from "./session.js";

export function renderSignIn(main, context) {
  const heading = el("h1", { tabindex: "-1", text: "Sign in" });
  // Optional: a key scoped to exactly one namespace may leave it out (CONTRACT.md).
  const namespace = el("input", { id: "namespace", name: "namespace", autocomplete: "off", spellcheck: "false", placeholder: "e.g. demo" });
  const key = el("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const form = el(
    "form",
    { class: "card signin", id: "signin" },
    el("p", { class: "hint", text: "Your key stays in this browser tab (session storage) and is sent only to this gateway, in the Authorization header." }),
    el("label", { for: "namespace", text: "Namespace (ID or name; optional for a key of one namespace)" }),
    namespace,
    el("label", { for: "api-key", text: "API key" }),
    key,
    el("button", { type: "submit", class: "button primary", text: "Sign in" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const apiKey = key.value.trim();
    if (!apiKey) {
      key.focus();
      return;
    }
    saveSession(apiKey, namespace.value.trim());
    key.value = "";
    context.reload();
  });
  replace(main, heading, form);
  namespace.focus();
}

export function renderHome(main, context) {
  const heading = el("h1", { tabindex: "-1", text: "Open a retriever" });
  const retriever = el("input", { id: "retriever", name: "retriever", autocomplete: "off", spellcheck: "false", placeholder: "ret_… or its name", required: true });
  const execution = el("input", { id: "execution", name: "execution", autocomplete: "off", spellcheck: "false", placeholder: "exec_… (optional)" });
  const form = el(
    "form",
    { class: "card signin", id: "open-retriever" },
    el("label", { for: "retriever", text: "Retriever (ID or name)" }),
    retriever,
    el("label", { for: "execution", text: "Execution ID (optional)" }),
    execution,
    el("button", { type: "submit", class: "button primary", text: "Open" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = retriever.value.trim();
    if (!name) return;
    const id = execution.value.trim();
    window.location.hash = id ? context.detailHash(name, id) : context.listHash({ retriever: name });
  });
  replace(main, heading, form);
  context.focus(heading);
}
