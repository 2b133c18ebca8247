// A horizontal bar as inline SVG: its length is an attribute, so no inline style is needed
// (the page's Content-Security-Policy allows none). Decorative: the numbers are text beside it.

import { svg } from "./dom.js";

export function bar(fraction, className) {
  const width = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0)) * 100;
  return svg(
    "svg",
    { class: `bar ${className}`, viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    svg("rect", { class: "bar-track", x: 0, y: 0, width: 100, height: 10 }),
    svg("rect", { class: "bar-fill", x: 0, y: 0, width: width.toFixed(3), height: 10 }),
  );
}
