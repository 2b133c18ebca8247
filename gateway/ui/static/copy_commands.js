// "Copy as curl / grpcurl" for what is on screen. The key is never written out: the
// commands read it from $EXECGATE_API_KEY, so they can be pasted into a ticket safely.

import { el } from "./dom.js";
import { executionPath, listPath } from "./api.js";

const KEY_HEADER = '"Authorization: Bearer $EXECGATE_API_KEY"';
const GRPC_KEY_HEADER = '"authorization: Bearer $EXECGATE_API_KEY"';
const GRPC_ADDRESS = '"${EXECGATE_GRPC_ADDRESS:-127.0.0.1:50051}"';
const SERVICE = "execgate.retrievers.v1.ExecutionService";

function shellQuote(value) {
  return `'${String(value).replaceAll("'", `'\\''`)}'`;
}

function namespaceHeader(namespace, name) {
  return namespace ? [`-H ${shellQuote(`${name}: ${namespace}`)}`] : [];
}

export function curlForExecution(origin, namespace, retriever, execution) {
  return [
    "curl -s",
    `-H ${KEY_HEADER}`,
    ...namespaceHeader(namespace, "X-Namespace"),
    shellQuote(origin + executionPath(retriever, execution)),
  ].join(" \\\n  ");
}

export function grpcurlForExecution(namespace, retriever, execution) {
  return grpcurl(namespace, "GetExecution", { retriever_id: retriever, execution_id: execution });
}

export function curlForList(origin, namespace, retriever, query, body) {
  const url = new URL(listPath(retriever), origin);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value));
  return [
    "curl -s",
    `-H ${KEY_HEADER}`,
    ...namespaceHeader(namespace, "X-Namespace"),
    "-H 'Content-Type: application/json'",
    `-X POST ${shellQuote(url.toString())}`,
    `-d ${shellQuote(JSON.stringify(body))}`,
  ].join(" \\\n  ");
}

// The same listing in the protobuf JSON mapping grpcurl speaks (enum names, not REST names).
export function grpcurlForList(namespace, retriever, query, body) {
  const request = { retriever_id: retriever, limit: query.limit, include_total: Boolean(query.include_total) };
  if (query.cursor) request.cursor = query.cursor;
  const grpcQuery = {};
  if (body.status) grpcQuery.status = `EXECUTION_STATUS_${body.status.toUpperCase()}`;
  if (body.sorts?.length) {
    grpcQuery.sorts = body.sorts.map((sort) => ({
      field: `EXECUTION_SORT_FIELD_${sort.field.toUpperCase()}`,
      direction: `SORT_DIRECTION_${sort.direction.toUpperCase()}`,
    }));
  }
  if (Object.keys(grpcQuery).length) request.query = grpcQuery;
  return grpcurl(namespace, "ListExecutions", request);
}

// One call of `method` on the ExecutionService with `request` as its JSON body.
function grpcurl(namespace, method, request) {
  return [
    "grpcurl -plaintext",
    `-H ${GRPC_KEY_HEADER}`,
    ...namespaceHeader(namespace, "x-namespace"),
    `-d ${shellQuote(JSON.stringify(request))}`,
    GRPC_ADDRESS,
    `${SERVICE}/${method}`,
  ].join(" \\\n  ");
}

// A panel with both commands as text and a copy button for each.
export function commandsPanel(commands) {
  const panel = el(
    "details",
    { class: "commands" },
    el("summary", { text: "Copy as curl / grpcurl" }),
    el("p", {
      class: "hint",
      text: "The key is not included: export EXECGATE_API_KEY=… in your shell first.",
    }),
  );
  for (const [label, text] of commands) {
    const pre = el("pre", { class: "command", tabindex: "0", "aria-label": label, text });
    const status = el("span", { class: "copy-status", role: "status" });
    const button = el("button", {
      type: "button",
      class: "button",
      text: `Copy as ${label}`,
      onclick: () => copyText(text, pre, status),
    });
    panel.append(el("div", { class: "command-block" }, el("div", { class: "command-head" }, button, status), pre));
  }
  return panel;
}

async function copyText(text, pre, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    // No clipboard access (plain http on another host): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents(pre);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    pre.focus();
    status.textContent = "Selected: press Ctrl+C to copy.";
  }
}
