// An execution status as a labelled badge; the class only picks a colour.

import { el } from "./dom.js";

const KNOWN = new Set(["pending", "processing", "completed", "failed"]);

export function statusBadge(status) {
  const known = KNOWN.has(status) ? status : "unknown";
  return el("span", { class: `badge badge-${known}`, text: String(status ?? "unknown") });
}

export function inFlight(status) {
  return status === "pending" || status === "processing";
}
