// Stages in pipeline order. The API keys `stage_statistics.stages` by stage name (a JSON
// object, rendered with sorted keys), so the order is rebuilt from the counts: each
// stage's input is the previous stage's output. The first stage is the one no other
// stage feeds; ties fall back to the larger input, then the name.

export function pipelineOrder(stages) {
  const remaining = new Map(Object.entries(stages ?? {}));
  const order = [];
  while (remaining.size) {
    const last = order.length ? order[order.length - 1][1] : null;
    let next = last ? pick([...remaining].filter(([, s]) => s.input_count === last.output_count)) : null;
    if (!next) {
      const fed = new Set([...remaining.values()].map((s) => s.output_count));
      const heads = [...remaining].filter(([, s]) => !fed.has(s.input_count));
      next = pick(heads.length ? heads : [...remaining]);
    }
    order.push(next);
    remaining.delete(next[0]);
  }
  return order;
}

function pick(candidates) {
  if (!candidates.length) return null;
  return [...candidates].sort(
    ([nameA, a], [nameB, b]) => (b.input_count ?? 0) - (a.input_count ?? 0) || nameA.localeCompare(nameB),
  )[0];
}
