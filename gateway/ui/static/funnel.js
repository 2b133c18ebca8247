// The stage funnel: documents into and out of each stage, in pipeline order, with the
// stage's efficiency (output / input, computed by the service). Bar lengths are on a log
// scale, since stages commonly narrow by orders of magnitude.

import { bar } from "./bars.js";
import { el } from "./dom.js";
import * as fmt from "./format.js";
import { pipelineOrder } from "./stages.js";

export function funnelSection(detail) {
  const ordered = pipelineOrder(detail.stage_statistics?.stages);
  const section = el("section", { class: "card", "aria-labelledby": "funnel-title" }, el("h2", { id: "funnel-title", text: "Stage funnel" }));
  if (!ordered.length && !detail.current_stage) {
    section.append(el("p", { class: "empty", text: "No stage has reported yet." }));
    return section;
  }
  const largest = Math.max(1, ...ordered.map(([, s]) => s.input_count ?? 0));
  const scale = (value) => Math.log10((value ?? 0) + 1) / Math.log10(largest + 1);
  const list = el("ol", { class: "funnel", id: "funnel" });
  ordered.forEach(([name, stage], index) => {
    list.append(
      el(
        "li",
        { class: stage.error ? "stage stage-error" : "stage", dataset: { stage: name } },
        el("div", { class: "stage-head" }, el("span", { class: "stage-index", text: `${index + 1}.` }), el("strong", { class: "stage-name", text: name }), stageFlags(stage)),
        el(
          "div",
          { class: "stage-counts" },
          el("span", { class: "count-in", title: "documents in" }, "in ", el("data", { value: String(stage.input_count), text: fmt.count(stage.input_count) })),
          bar(scale(stage.input_count), "bar-in"),
          el("span", { class: "count-out", title: "documents out" }, "out ", el("data", { value: String(stage.output_count), text: fmt.count(stage.output_count) })),
          bar(scale(stage.output_count), "bar-out"),
          el("span", { class: "efficiency" }, "efficiency ", el("data", { value: String(stage.efficiency), text: fmt.ratio(stage.efficiency) })),
        ),
        stage.error ? el("p", { class: "stage-error-text", role: "note", text: `Stage error: ${stage.error}` }) : null,
        jsonDetails("Stage metadata", stage.metadata),
      ),
    );
  });
  if (detail.current_stage && !(detail.stage_statistics?.stages ?? {})[detail.current_stage]) {
    list.append(
      el(
        "li",
        { class: "stage stage-running", dataset: { stage: detail.current_stage } },
        el("div", { class: "stage-head" }, el("span", { class: "stage-index", text: `${ordered.length + 1}.` }), el("strong", { class: "stage-name", text: detail.current_stage }), el("span", { class: "flag flag-running", text: "running" })),
      ),
    );
  }
  section.append(list);
  return section;
}

function stageFlags(stage) {
  const flags = [];
  if (stage.cache_hit === true) flags.push(el("span", { class: "flag", text: "cache hit" }));
  if (typeof stage.llm_calls === "number") flags.push(el("span", { class: "flag", text: `${fmt.count(stage.llm_calls)} LLM calls` }));
  if (typeof stage.tokens_used === "number") flags.push(el("span", { class: "flag", text: `${fmt.count(stage.tokens_used)} tokens` }));
  if (stage.error) flags.push(el("span", { class: "flag flag-error", text: "error" }));
  return flags;
}

// A JSON value, pretty-printed as text, behind a disclosure; nothing when empty.
export function jsonDetails(label, value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "object" && !Object.keys(value).length) return null;
  const pre = el("pre", { class: "json" });
  const details = el("details", { class: "json-details" }, el("summary", { text: label }), pre);
  details.addEventListener("toggle", () => {
    if (details.open && !pre.textContent) pre.textContent = fmt.prettyJson(value);
  });
  return details;
}
