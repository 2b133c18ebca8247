// Follows GET …/executions/{id}:watch as Server-Sent Events over fetch() (EventSource cannot
// send Authorization). On a dropped connection it reconnects with Last-Event-ID, so the
// server resumes after the last event seen; the caller is told every state change.
//   onState(state, detail): "connecting" | "live" | "reconnecting" | "ended" | "failed"

import { authHeaders, errorFrom, urlFor, watchPath } from "./api.js";
import { SseParser } from "./sse.js";
import { TERMINAL_EVENTS } from "./live_state.js";

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

export function watchExecution(session, retriever, execution, { onEvent, onState }) {
  const controller = new AbortController();
  let lastEventId = "";
  let attempt = 0;
  let stopped = false;

  const stop = () => {
    stopped = true;
    controller.abort();
  };

  const run = async () => {
    while (!stopped) {
      onState(attempt === 0 ? "connecting" : "reconnecting", { attempt });
      let ended = false;
      let retryMs = null;
      let streamError = null;
      try {
        const headers = { ...authHeaders(session), Accept: "text/event-stream" };
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const response = await fetch(urlFor(watchPath(retriever, execution)), {
          headers,
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
          redirect: "error",
        });
        if (!response.ok) {
          const error = errorFrom(response.status, await response.json().catch(() => null));
          if (isRefusal(error.status)) {
            stopped = true;
            onState("failed", { error });
            return;
          }
          throw error;
        }
        attempt = 0;
        onState("live", {});
        const parser = new SseParser((event) => {
          if (event.id) lastEventId = event.id;
          let data = null;
          try {
            data = JSON.parse(event.data);
          } catch {
            return; // not JSON: nothing this page can show
          }
          if (event.type === "error") {
            streamError = errorFrom(typeof data?.status === "number" ? data.status : 0, data);
            return;
          }
          if (TERMINAL_EVENTS.has(event.type)) ended = true;
          onEvent(event.type, data);
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
        }
        retryMs = parser.retryMs;
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
      }
      if (ended) {
        stopped = true;
        onState("ended", {});
        return;
      }
      if (streamError && isRefusal(streamError.status)) {
        stopped = true;
        onState("failed", { error: streamError });
        return;
      }
      attempt += 1;
      const delay = retryMs ?? Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1));
      onState("reconnecting", { attempt, delayMs: delay, error: streamError });
      await sleep(delay, controller.signal);
    }
  };
  run();
  return { stop };
}

// A refusal (4xx other than rate limiting) does not change by retrying.
function isRefusal(status) {
  return status >= 400 && status < 500 && status !== 429;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
