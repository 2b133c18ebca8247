// Budget used against its limits. `budget` is free-form JSON; the known shape is
// {credits_used, credits_remaining, time_used_ms, max_credits, ...}. For every
// `<thing>_used[_unit]` the limit is `max_<thing>[_unit]` or `<thing>_limit[_unit]`,
// else used + `<thing>_remaining[_unit]`; a use without a limit is shown as it is.

import { el } from "./dom.js";
import * as fmt from "./format.js";
import { jsonDetails } from "./funnel.js";

const USED = /^(.+)_used(_[a-z]+)?$/;

export function budgetMeters(budget) {
  const meters = [];
  for (const [key, used] of Object.entries(budget ?? {})) {
    const match = USED.exec(key);
    if (!match || typeof used !== "number") continue;
    const [, thing, unit = ""] = match;
    const explicit = [`max_${thing}${unit}`, `${thing}_limit${unit}`, `${thing}_max${unit}`]
      .map((name) => budget[name])
      .find((value) => typeof value === "number");
    const remaining = budget[`${thing}_remaining${unit}`];
    const limit = explicit ?? (typeof remaining === "number" ? used + remaining : null);
    meters.push({ key, thing, unit: unit.slice(1), used, limit });
  }
  return meters;
}

export function budgetSection(detail) {
  const budget = detail.budget ?? {};
  const section = el("section", { class: "card", "aria-labelledby": "budget-title" }, el("h2", { id: "budget-title", text: "Budget" }));
  const meters = budgetMeters(budget);
  if (!Object.keys(budget).length) {
    section.append(el("p", { class: "empty", text: "No budget reported." }));
    return section;
  }
  const list = el("ul", { class: "budget", id: "budget" });
  for (const meter of meters) {
    const label = `${meter.thing.replaceAll("_", " ")}${meter.unit ? ` (${meter.unit})` : ""}`;
    const used = meter.unit === "ms" ? fmt.milliseconds(meter.used) : fmt.number(meter.used);
    const id = `budget-${meter.key}`;
    const row = el("li", { class: "budget-row", dataset: { key: meter.key } }, el("label", { for: id, class: "budget-name", text: label }));
    if (meter.limit !== null && meter.limit > 0) {
      const limit = meter.unit === "ms" ? fmt.milliseconds(meter.limit) : fmt.number(meter.limit);
      row.append(
        el("meter", { id, min: "0", max: String(meter.limit), value: String(meter.used), high: String(meter.limit * 0.8), optimum: "0" }),
        el("span", { class: "budget-value", text: `${used} of ${limit} (${fmt.ratio(meter.used / meter.limit)})` }),
      );
    } else {
      row.append(el("output", { id, class: "budget-value", text: `${used} (no limit reported)` }));
    }
    list.append(row);
  }
  section.append(list, jsonDetails("All budget fields", budget));
  return section;
}
