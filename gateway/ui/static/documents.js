// The documents with their scores, 50 at a time, each payload pretty-printed as text
// behind a disclosure that is filled only when opened.

import { el } from "./dom.js";
import * as fmt from "./format.js";

const PAGE = 50;

export function documentsSection(documents) {
  const all = Array.isArray(documents) ? documents : [];
  const section = el("section", { class: "card", "aria-labelledby": "documents-title" }, el("h2", { id: "documents-title" }, "Documents ", el("span", { class: "muted", id: "documents-count", text: `(${fmt.count(all.length)})` })));
  if (!all.length) {
    section.append(el("p", { class: "empty", text: "No documents." }));
    return section;
  }
  const list = el("ol", { class: "documents", id: "documents" });
  const more = el("button", { type: "button", class: "button", id: "more-documents" });
  let shown = 0;
  const showMore = () => {
    const first = shown;
    for (const doc of all.slice(shown, shown + PAGE)) list.append(documentItem(doc, ++shown));
    const left = all.length - shown;
    more.hidden = left <= 0;
    more.textContent = `Show ${fmt.count(Math.min(PAGE, left))} more (${fmt.count(left)} left)`;
    if (first > 0) list.children[first]?.querySelector("summary")?.focus();
  };
  more.addEventListener("click", showMore);
  showMore();
  section.append(list, more);
  return section;
}

function documentItem(doc, rank) {
  const isObject = doc !== null && typeof doc === "object" && !Array.isArray(doc);
  const id = isObject && doc.document_id !== undefined ? String(doc.document_id) : `#${rank}`;
  const pre = el("pre", { class: "json" });
  const details = el(
    "details",
    { class: "document-payload" },
    el("summary", {}, el("span", { class: "document-id", text: id }), isObject && doc.score !== undefined ? el("span", { class: "document-score" }, "score ", el("data", { value: String(doc.score), text: fmt.score(doc.score) })) : null),
    pre,
  );
  details.addEventListener("toggle", () => {
    if (details.open && !pre.textContent) pre.textContent = fmt.prettyJson(doc);
  });
  return el("li", { class: "document", value: String(rank) }, details);
}
