// A retriever's executions: status filter, sort, page size and cursor paging, through
// POST /v1/retrievers/{id}/executions/list.

import { callApi, listPath } from "./api.js";
import { commandsPanel, curlForList, grpcurlForList } from "./copy_commands.js";
import { el, replace } from "./dom.js";
import { errorBox } from "./error_box.js";
import * as fmt from "./format.js";
import { PAGE_SIZES, SORTS, STATUSES, detailHash, listHash } from "./router.js";
import { statusBadge } from "./status_badge.js";

// Cursor of the page before a given cursor, learnt while paging forward (cursors only go forward).
const previousCursors = new Map();

function listRequest(route) {
  const [field, direction] = route.sort.split(".");
  const body = {};
  if (route.status) body.status = route.status;
  body.sorts = [{ field, direction }];
  const query = { limit: route.limit, include_total: true };
  if (route.cursor) query.cursor = route.cursor;
  return { query, body };
}

export async function renderList(main, route, context) {
  const { session, signal } = context;
  const heading = el("h1", { tabindex: "-1", text: "Executions" });
  const results = el("section", { class: "list-results", "aria-live": "polite", "aria-busy": "true" });
  replace(
    main,
    heading,
    el("p", { class: "subtitle" }, "Retriever ", el("code", { text: route.retriever })),
    controls(route, context),
    results,
  );
  context.focus(heading);
  const { query, body } = listRequest(route);
  let page;
  try {
    page = await callApi(session, "POST", listPath(route.retriever), { query, body, signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    replace(results, errorBox(error, { onSignOut: context.signOut }));
    results.setAttribute("aria-busy", "false");
    return;
  }
  replace(
    results,
    summaryLine(page),
    table(route, page.results ?? []),
    pager(route, page.pagination ?? {}),
    commandsPanel([
      ["curl", curlForList(window.location.origin, session.namespace, route.retriever, query, body)],
      ["grpcurl", grpcurlForList(session.namespace, route.retriever, query, body)],
    ]),
  );
  results.setAttribute("aria-busy", "false");
}

function controls(route, context) {
  const go = (changes) => {
    window.location.hash = listHash({ ...route, cursor: "", ...changes });
  };
  const status = el(
    "select",
    { id: "filter-status", onchange: (event) => go({ status: event.target.value }) },
    el("option", { value: "", text: "any status" }),
    STATUSES.map((value) => el("option", { value, text: value, selected: value === route.status })),
  );
  const sort = el(
    "select",
    { id: "filter-sort", onchange: (event) => go({ sort: event.target.value }) },
    Object.entries(SORTS).map(([value, label]) => el("option", { value, text: label, selected: value === route.sort })),
  );
  const limit = el(
    "select",
    { id: "filter-limit", onchange: (event) => go({ limit: Number(event.target.value) }) },
    PAGE_SIZES.map((value) => el("option", { value: String(value), text: String(value), selected: value === route.limit })),
  );
  const refresh = el("button", {
    type: "button",
    class: "button",
    text: "Refresh",
    onclick: () => context.reload(),
  });
  return el(
    "div",
    { class: "controls", role: "group", "aria-label": "Filter and sort" },
    el("label", { for: "filter-status" }, "Status ", status),
    el("label", { for: "filter-sort" }, "Sort ", sort),
    el("label", { for: "filter-limit" }, "Per page ", limit),
    refresh,
  );
}

function summaryLine(page) {
  const shown = page.results?.length ?? 0;
  const total = page.pagination?.total;
  const text = typeof total === "number" ? `${fmt.count(shown)} shown of ${fmt.count(total)}` : `${fmt.count(shown)} shown`;
  return el("p", { class: "summary", id: "list-summary", text });
}

const COLUMNS = [
  ["Execution", (row, route) => el("a", { href: detailHash(route.retriever, row.execution_id), text: row.execution_id })],
  ["Status", (row) => statusBadge(row.status)],
  ["Created", (row) => el("time", { datetime: row.created_at, text: fmt.instant(row.created_at) })],
  ["Completed", (row) => (row.completed_at ? el("time", { datetime: row.completed_at, text: fmt.instant(row.completed_at) }) : "—")],
  ["Duration", (row) => fmt.milliseconds(row.duration_ms)],
  ["Credits", (row) => fmt.number(row.credits_used)],
  ["Processed", (row) => fmt.count(row.total_processed)],
  ["Returned", (row) => fmt.count(row.total_returned)],
];

function table(route, rows) {
  if (!rows.length) return el("p", { class: "empty", text: "No executions match." });
  return el(
    "table",
    { class: "executions" },
    el("thead", {}, el("tr", {}, COLUMNS.map(([name]) => el("th", { scope: "col", text: name })))),
    el(
      "tbody",
      {},
      rows.map((row) =>
        el(
          "tr",
          { dataset: { executionId: String(row.execution_id) } },
          COLUMNS.map(([name, cell]) => el("td", { "data-label": name }, cell(row, route))),
        ),
      ),
    ),
  );
}

function pager(route, pagination) {
  const links = [];
  if (route.cursor) {
    links.push(el("a", { class: "button", href: listHash({ ...route, cursor: "" }), text: "« First page" }));
    if (previousCursors.has(route.cursor)) {
      const previous = previousCursors.get(route.cursor);
      links.push(el("a", { class: "button", href: listHash({ ...route, cursor: previous }), text: "‹ Previous page" }));
    }
  }
  if (pagination.has_next && pagination.next_cursor) {
    previousCursors.set(pagination.next_cursor, route.cursor);
    links.push(el("a", { class: "button", id: "next-page", href: listHash({ ...route, cursor: pagination.next_cursor }), text: "Next page ›" }));
  }
  return links.length ? el("nav", { class: "pager", "aria-label": "Pages" }, links) : null;
}
