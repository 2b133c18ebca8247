// Entry point: reads the location hash, shows the matching view, and cancels the previous
// view's requests and live stream whenever the location changes.

import { el, replace } from "./dom.js";
import { renderDetail } from "./detail_view.js";
import { renderList } from "./list_view.js";
import { detailHash, listHash, parseHash } from "./router.js";
import { clearSession, loadSession } from "./session.js";
import { renderHome, renderSignIn } from "./signin_view.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const who = document.getElementById("who");
let current = null;

function show() {
  current?.abort();
  current = new AbortController();
  const session = loadSession();
  const route = parseHash(window.location.hash);
  const context = {
    session,
    signal: current.signal,
    reload: show,
    signOut,
    focus: (node) => node.focus({ preventScroll: false }),
    detailHash,
    listHash,
  };
  showHeader(session, route);
  if (!session) {
    renderSignIn(main, context);
  } else if (route.view === "list") {
    renderList(main, route, context);
  } else if (route.view === "detail") {
    renderDetail(main, route, context);
  } else {
    renderHome(main, context);
  }
}

function signOut() {
  clearSession();
  show();
}

function showHeader(session, route) {
  const trail = [];
  if (route.view === "list" || route.view === "detail") {
    trail.push(el("a", { href: listHash({ retriever: route.retriever }), text: route.retriever }));
  }
  if (route.view === "detail") trail.push(el("span", { "aria-current": "page", text: route.execution }));
  replace(crumbs, trail.flatMap((item, index) => (index ? [el("span", { class: "sep", "aria-hidden": "true", text: "/" }), item] : [item])));
  replace(
    who,
    session
      ? [
          el("span", { class: "namespace" }, "namespace ", el("strong", { text: session.namespace || "(key's only namespace)" })),
          el("button", { type: "button", class: "button", id: "sign-out", text: "Sign out", onclick: signOut }),
        ]
      : [],
  );
}

window.addEventListener("hashchange", show);
show();
