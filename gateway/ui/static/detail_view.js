// One execution: status and error, stage funnel, time per stage, budget, documents, and
// copyable commands. While it is in flight the page follows the watch stream.

import { callApi, executionPath } from "./api.js";
import { budgetSection } from "./budget.js";
import { commandsPanel, curlForExecution, grpcurlForExecution } from "./copy_commands.js";
import { documentsSection } from "./documents.js";
import { announce, el, replace } from "./dom.js";
import { errorBox } from "./error_box.js";
import * as fmt from "./format.js";
import { funnelSection, jsonDetails } from "./funnel.js";
import { applyEvent } from "./live_state.js";
import { listHash } from "./router.js";
import { inFlight, statusBadge } from "./status_badge.js";
import { timingSection } from "./timing.js";
import { watchExecution } from "./watch.js";

const LIVE_LABELS = {
  connecting: "Connecting to live updates…",
  live: "Live: updates as the execution runs",
  reconnecting: "Connection lost: reconnecting…",
  ended: "Finished: live updates ended",
  failed: "Live updates unavailable",
};

export async function renderDetail(main, route, context) {
  const { session, signal } = context;
  const heading = el("h1", { tabindex: "-1", class: "execution-id" }, el("span", { class: "muted", text: "Execution " }), el("code", { text: route.execution }));
  const body = el("div", { class: "detail", "aria-busy": "true" }, el("p", { class: "loading", text: "Loading…" }));
  replace(
    main,
    el("p", { class: "back" }, el("a", { href: listHash({ retriever: route.retriever }), text: "‹ All executions of this retriever" })),
    heading,
    body,
  );
  context.focus(heading);
  let detail;
  try {
    detail = await callApi(session, "GET", executionPath(route.retriever, route.execution), { signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    replace(body, errorBox(error, { onSignOut: context.signOut }));
    body.setAttribute("aria-busy", "false");
    return;
  }

  const parts = {
    overview: el("section", { class: "card overview", "aria-labelledby": "overview-title" }),
    live: el("p", { class: "live", id: "live-status", role: "status", hidden: true }),
    funnel: el("div"),
    timing: el("div"),
    budget: el("div"),
    extra: el("div"),
    documents: el("div"),
  };
  const refresh = el("button", { type: "button", class: "button", id: "refresh", text: "Refresh", onclick: () => context.reload() });
  const commands = commandsPanel([
    ["curl", curlForExecution(window.location.origin, session.namespace, route.retriever, route.execution)],
    ["grpcurl", grpcurlForExecution(session.namespace, route.retriever, route.execution)],
  ]);
  replace(
    body,
    el("div", { class: "toolbar" }, parts.live, refresh),
    parts.overview,
    el("div", { class: "grid" }, parts.funnel, parts.timing),
    parts.budget,
    parts.extra,
    parts.documents,
    commands,
  );
  body.setAttribute("aria-busy", "false");

  let shownDocuments = null;
  const render = (next) => {
    const previousStatus = detail.status;
    detail = next;
    replace(parts.overview, overview(detail));
    replace(parts.funnel, funnelSection(detail));
    replace(parts.timing, timingSection(detail));
    replace(parts.budget, budgetSection(detail));
    replace(parts.extra, extras(detail));
    if (detail.documents !== shownDocuments) {
      shownDocuments = detail.documents;
      replace(parts.documents, documentsSection(detail.documents));
    }
    if (previousStatus !== detail.status) announce(`Execution is now ${detail.status}.`);
  };
  render(detail);

  if (inFlight(detail.status)) {
    const watcher = watchExecution(session, route.retriever, route.execution, {
      onEvent: (type, data) => render(applyEvent(detail, type, data)),
      onState: (state, info) => showLiveState(parts.live, state, info),
    });
    signal.addEventListener("abort", watcher.stop);
  }
}

function showLiveState(node, state, info) {
  node.hidden = false;
  node.dataset.state = state;
  let text = LIVE_LABELS[state] ?? state;
  if (state === "reconnecting" && info.attempt) text = `Connection lost: reconnecting (attempt ${info.attempt})…`;
  if (state === "failed" && info.error) text = `${LIVE_LABELS.failed}: ${info.error.message}`;
  node.textContent = text;
}

function overview(detail) {
  const facts = [
    ["Status", statusBadge(detail.status)],
    ["Retriever", el("code", { text: String(detail.retriever_id ?? "—") })],
    ["Created", el("time", { datetime: detail.created_at, text: fmt.instant(detail.created_at) })],
    ["Completed", detail.completed_at ? el("time", { datetime: detail.completed_at, text: fmt.instant(detail.completed_at) }) : "—"],
    ["Stages", el("span", { id: "stages-progress", text: `${fmt.count(detail.stages_completed)} of ${fmt.count(detail.total_stages)} completed` })],
    ["Current stage", detail.current_stage ? el("code", { text: detail.current_stage }) : "—"],
    ["Total time", fmt.milliseconds(detail.stage_statistics?.total_time_ms)],
    ["Credits used", el("span", { id: "credits-used", text: fmt.number(detail.stage_statistics?.credits_used) })],
  ];
  if (typeof detail.cached_at === "number") facts.push(["Served from cache", `cached ${fmt.instant(new Date(detail.cached_at * 1000).toISOString())}`]);
  const list = el("dl", { class: "facts" }, facts.map(([name, value]) => el("div", { class: "fact" }, el("dt", { text: name }), el("dd", {}, value))));
  return [
    el("h2", { id: "overview-title", class: "visually-hidden", text: "Overview" }),
    detail.error ? el("div", { class: "error-box", role: "alert", id: "execution-error" }, el("p", { class: "error-message", text: detail.error })) : null,
    list,
    detail.total_stages > 0 ? el("progress", { max: String(detail.total_stages), value: String(detail.stages_completed), "aria-label": "Stages completed" }) : null,
    detail.warnings?.length ? el("ul", { class: "warnings", "aria-label": "Warnings" }, detail.warnings.map((warning) => el("li", { text: warning }))) : null,
  ];
}

function extras(detail) {
  const parts = [
    jsonDetails("Optimization summary", detail.optimization_summary),
    jsonDetails("Learned fusion context", detail.learned_fusion_context),
    jsonDetails("Pagination", detail.pagination),
  ].filter(Boolean);
  return parts.length ? el("section", { class: "card", "aria-label": "More about this execution" }, parts) : null;
}
