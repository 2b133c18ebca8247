// The REST API, called exactly as any client does; failures become ApiError from the
// contract's error envelope ({success, status, error: {message, type, code, details}}).

class ApiError extends Error {
  constructor(status, type, code, message, details = null) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.details = details;
  }
}

export function executionPath(retrieverId, executionId) {
  return `/v1/retrievers/${encodeURIComponent(retrieverId)}/executions/${encodeURIComponent(executionId)}`;
}

export function listPath(retrieverId) {
  return `/v1/retrievers/${encodeURIComponent(retrieverId)}/executions/list`;
}

export function watchPath(retrieverId, executionId) {
  return `${executionPath(retrieverId, executionId)}:watch`;
}

export function authHeaders(session) {
  const headers = { Authorization: `Bearer ${session.apiKey}` };
  if (session.namespace) headers["X-Namespace"] = session.namespace;
  return headers;
}

export function urlFor(path, query = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

export async function callApi(session, method, path, { query = {}, body, signal } = {}) {
  const headers = { ...authHeaders(session), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(urlFor(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      // Terminal executions carry an ETag: revalidate rather than download again.
      cache: "no-cache",
      credentials: "omit",
      redirect: "error",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NetworkError", null, "The gateway could not be reached.");
  }
  const data = await readJson(response);
  if (!response.ok) throw errorFrom(response.status, data);
  if (data === null) {
    throw new ApiError(response.status, "InvalidResponse", null, "The gateway answered something that is not JSON.");
  }
  return data;
}

async function readJson(response) {
  try {
    return JSON.parse(await response.text());
  } catch {
    return null;
  }
}

export function errorFrom(status, data) {
  const envelope = data && typeof data === "object" ? data.error : null;
  if (envelope && typeof envelope === "object") {
    return new ApiError(
      status,
      textOr(envelope.type, "Error"),
      typeof envelope.code === "string" ? envelope.code : null,
      textOr(envelope.message, `HTTP ${status}`),
      envelope.details ?? null,
    );
  }
  if (data && Array.isArray(data.detail)) {
    // 422: {"detail": [{"loc", "msg", "type"}]}
    const message = data.detail
      .map((item) => `${Array.isArray(item.loc) ? item.loc.join(".") : "?"}: ${textOr(item.msg, "invalid")}`)
      .join("; ");
    return new ApiError(status, "ValidationError", "validation_error", message, data.detail);
  }
  return new ApiError(status, "HttpError", null, `The gateway answered HTTP ${status}.`);
}

function textOr(value, fallback) {
  return typeof value === "string" && value ? value : fallback;
}
