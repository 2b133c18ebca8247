// An API failure as people need it: the envelope's message, then its type, code and status.

import { el } from "./dom.js";

export function errorBox(error, { onSignOut } = {}) {
  const isApi = typeof error?.status === "number";
  const facts = isApi
    ? [error.type, error.code, error.status ? `HTTP ${error.status}` : null].filter(Boolean).join(" · ")
    : "";
  const box = el(
    "div",
    { class: "error-box", role: "alert" },
    el("p", { class: "error-message", text: error?.message || "Something went wrong." }),
    facts ? el("p", { class: "error-facts", text: facts }) : null,
  );
  if (isApi && (error.status === 401 || error.status === 403) && onSignOut) {
    box.append(el("button", { type: "button", class: "button", onclick: onSignOut, text: "Sign in with another key" }));
  }
  return box;
}
