// Locations live in the URL hash, so a link can be shared: retriever and execution IDs
// and the list's filter, sort and cursor; never the API key (that stays in the session).
//   #/                                            home (open a retriever)
//   #/retrievers/{retriever}?status=&sort=&limit=&cursor=   the executions of a retriever
//   #/retrievers/{retriever}/executions/{execution}         one execution

export const SORTS = {
  "created_at.desc": "Newest first",
  "created_at.asc": "Oldest first",
  "completed_at.desc": "Completed, latest first",
  "completed_at.asc": "Completed, earliest first",
  "duration_ms.desc": "Slowest first",
  "duration_ms.asc": "Fastest first",
  "credits_used.desc": "Most credits first",
  "credits_used.asc": "Fewest credits first",
};
export const STATUSES = ["pending", "processing", "completed", "failed"];
export const PAGE_SIZES = [20, 50, 100];

export function parseHash(hash) {
  const [path, queryString = ""] = hash.replace(/^#/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean).map(safeDecode);
  const query = new URLSearchParams(queryString);
  if (parts[0] === "retrievers" && parts[1]) {
    if (parts[2] === "executions" && parts[3] && parts.length === 4) {
      return { view: "detail", retriever: parts[1], execution: parts[3] };
    }
    if (parts.length === 2) {
      const status = query.get("status");
      const sort = query.get("sort");
      const limit = Number(query.get("limit"));
      return {
        view: "list",
        retriever: parts[1],
        status: STATUSES.includes(status) ? status : "",
        sort: sort in SORTS ? sort : "created_at.desc",
        limit: PAGE_SIZES.includes(limit) ? limit : PAGE_SIZES[0],
        cursor: query.get("cursor") ?? "",
      };
    }
  }
  return { view: "home" };
}

export function listHash({ retriever, status = "", sort = "created_at.desc", limit = PAGE_SIZES[0], cursor = "" }) {
  const query = new URLSearchParams();
  if (status) query.set("status", status);
  if (sort !== "created_at.desc") query.set("sort", sort);
  if (limit !== PAGE_SIZES[0]) query.set("limit", String(limit));
  if (cursor) query.set("cursor", cursor);
  const suffix = query.toString();
  return `#/retrievers/${encodeURIComponent(retriever)}${suffix ? `?${suffix}` : ""}`;
}

export function detailHash(retriever, execution) {
  return `#/retrievers/${encodeURIComponent(retriever)}/executions/${encodeURIComponent(execution)}`;
}

function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
