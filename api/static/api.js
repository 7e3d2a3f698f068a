// The Chute HTTP API as the page uses it: the key (sessionStorage), JSON requests, readable errors.

const KEY_STORAGE = "chute.apiKey";

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** An answer that was not a success, with the API's `detail` sentence as its message. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// Anyone interested in "the key was refused" (the key panel) listens here.
const unauthorizedListeners = new Set();

export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

function notifyUnauthorized(error) {
  for (const listener of unauthorizedListeners) listener(error);
}

export function authHeaders(key = getKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Turns a non-2xx fetch Response into an ApiError carrying the API's `detail`. */
export async function errorFrom(response) {
  let code = "http_error";
  let detail = `The server answered ${response.status} ${response.statusText}.`;
  try {
    const body = await response.json();
    if (body && typeof body === "object") {
      code = body.error || code;
      detail = body.detail || detail;
    }
  } catch {
    // not JSON: keep the generic sentence
  }
  if (response.status === 401) {
    detail = `The API key was refused: ${detail}`;
  }
  const error = new ApiError(response.status, code, detail);
  if (response.status === 401) notifyUnauthorized(error);
  return error;
}

/**
 * One JSON request to the API (same origin as the page). Resolves to the parsed body
 * (null for 204); rejects with ApiError for an error answer or when the API cannot be reached.
 */
export async function request(method, path, { body, signal, key } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(key) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "The Chute API cannot be reached. Check your connection and retry.");
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  presign: (file, signal) =>
    request("POST", "/v1/uploads", {
      body: { filename: file.name, size: file.size, ...(file.type ? { content_type: file.type } : {}) },
      signal,
    }),
  complete: (documentId, parts, signal) =>
    request("POST", `/v1/uploads/${documentId}/complete`, { body: parts ? { parts } : {}, signal }),
  document: (documentId, signal) => request("GET", `/v1/documents/${documentId}`, { signal }),
  documents: ({ status, cursor, limit = 50, key } = {}) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (status) query.set("status", status);
    if (cursor) query.set("cursor", cursor);
    return request("GET", `/v1/documents?${query}`, { key });
  },
  cancel: (documentId) => request("POST", `/v1/documents/${documentId}/cancel`),
  remove: (documentId) => request("DELETE", `/v1/documents/${documentId}`),
  search: (query, k = 8) => request("POST", "/v1/search", { body: { query, k } }),
};
