// Numbers, durations and instants as people read them (in the browser's locale).

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function count(value) {
  return typeof value === "number" ? integer.format(value) : "—";
}

export function number(value) {
  return typeof value === "number" ? decimal.format(value) : "—";
}

export function ratio(value) {
  return typeof value === "number" ? percent.format(value) : "—";
}

export function milliseconds(value) {
  if (typeof value !== "number") return "—";
  return value >= 10_000 ? `${decimal.format(value / 1000)} s` : `${decimal.format(value)} ms`;
}

export function instant(value) {
  if (typeof value !== "string") return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : when.format(date);
}

// A score keeps its precision: ranks differ in the fourth decimal.
export function score(value) {
  return typeof value === "number" ? String(value) : "—";
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}
