// Applies one WatchExecution event to the execution on screen. Event names and shapes are
// those of `execgate.retrievers.v1.ExecutionEvent` (SSE `event:` is the oneof field's name;
// `data:` the event rendered like any REST body).

export const TERMINAL_EVENTS = new Set(["completed", "failed"]);

export function applyEvent(detail, type, data) {
  const payload = data && typeof data === "object" && type in data ? data[type] : data;
  if (!payload || typeof payload !== "object") return detail;
  switch (type) {
    case "snapshot":
      return payload.execution ?? detail;
    case "completed":
    case "failed":
      return payload;
    case "stage_started":
      return { ...progressFields(detail, payload), current_stage: payload.stage_name ?? detail.current_stage };
    case "stage_progress":
    case "stage_completed": {
      const next = progressFields(detail, payload);
      const statistics = detail.stage_statistics ?? { stages: {}, total_time_ms: 0, credits_used: 0 };
      next.stage_statistics = {
        ...statistics,
        stages: { ...(statistics.stages ?? {}), [payload.stage_name]: payload.statistics ?? {} },
      };
      return next;
    }
    case "budget_changed":
      return { ...detail, budget: payload.budget ?? {} };
    default:
      return detail; // heartbeat and kinds this page does not know yet
  }
}

function progressFields(detail, payload) {
  const next = { ...detail };
  for (const name of ["status", "stages_completed", "total_stages"]) {
    if (payload[name] !== undefined && payload[name] !== null) next[name] = payload[name];
  }
  return next;
}
