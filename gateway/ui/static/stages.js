// Stages in pipeline order. The API renders `stage_statistics.stages` in that order (the
// order in which the stages first reported; CONTRACT.md), and JSON.parse keeps an object's
// key order, so the order on screen is the order of the keys. (JavaScript would move keys
// that look like array indexes, "0", "42", to the front: a stage named so would be listed
// first.)

export function pipelineOrder(stages) {
  return Object.entries(stages ?? {});
}
