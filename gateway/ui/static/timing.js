// Where the time went: each stage's duration as a bar against the execution's total
// (or the sum of the stages while the total is not known yet).

import { bar } from "./bars.js";
import { el } from "./dom.js";
import * as fmt from "./format.js";
import { pipelineOrder } from "./stages.js";

export function timingSection(detail) {
  const statistics = detail.stage_statistics ?? {};
  const ordered = pipelineOrder(statistics.stages);
  const section = el("section", { class: "card", "aria-labelledby": "timing-title" }, el("h2", { id: "timing-title", text: "Time per stage" }));
  const stageSum = ordered.reduce((sum, [, stage]) => sum + (stage.duration_ms ?? 0), 0);
  const total = statistics.total_time_ms > 0 ? statistics.total_time_ms : stageSum;
  section.append(
    el("p", { class: "summary" }, "Total ", el("data", { id: "total-time", value: String(statistics.total_time_ms ?? 0), text: fmt.milliseconds(statistics.total_time_ms ?? 0) }), statistics.total_time_ms > 0 ? "" : " (not final yet)"),
  );
  if (!ordered.length) return section;
  const slowest = ordered.reduce((best, item) => ((item[1].duration_ms ?? 0) > (best[1].duration_ms ?? 0) ? item : best));
  const list = el("ul", { class: "timing", id: "timing" });
  for (const [name, stage] of ordered) {
    const share = total > 0 ? (stage.duration_ms ?? 0) / total : 0;
    list.append(
      el(
        "li",
        { class: name === slowest[0] ? "timing-row slowest" : "timing-row", dataset: { stage: name } },
        el("span", { class: "timing-name", text: name }),
        bar(share, "bar-time"),
        el("span", { class: "timing-value" }, el("data", { value: String(stage.duration_ms), text: fmt.milliseconds(stage.duration_ms) }), ` · ${fmt.ratio(share)}`),
      ),
    );
  }
  section.append(list);
  return section;
}
