// Live document status: Server-Sent Events read with fetch() (EventSource cannot send the
// Authorization header), one reconnect, then polling GET /v1/documents/{id} every second.

import { api, authHeaders, errorFrom } from "./api.js";

export const FINAL = new Set(["indexed", "failed", "cancelled", "expired"]);
const POLL_MS = 1000;

/** Splits an SSE byte stream into `{event, data}` messages (https://html.spec.whatwg.org/#event-stream-interpretation). */
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an unfinished line waits for the next chunk
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
        } else if (line.startsWith(":")) {
          // comment (keep-alive)
        } else {
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Reads the stream once; returns the last document seen ("deleted" if the server said so). */
async function streamOnce(documentId, onStatus, signal) {
  const response = await fetch(`/v1/documents/${documentId}/events`, {
    headers: { Accept: "text/event-stream", ...authHeaders() },
    signal,
    cache: "no-store",
  });
  if (!response.ok) throw await errorFrom(response);
  let last = null;
  for await (const message of readEvents(response.body)) {
    if (message.event === "status") {
      last = JSON.parse(message.data);
      onStatus(last);
      if (FINAL.has(last.status)) return last;
    } else if (message.event === "deleted") {
      return "deleted";
    }
  }
  return last;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Follows one document until a final state, calling `onStatus(document)` for each change and
 * `onMode("live" | "polling")` when the way of watching changes. Resolves with the final document,
 * "deleted", or null when `signal` aborts.
 */
export async function watchDocument(documentId, { onStatus, onMode = () => {}, signal }) {
  for (let attempt = 0; attempt < 2 && !signal?.aborted; attempt += 1) {
    try {
      onMode("live");
      const last = await streamOnce(documentId, onStatus, signal);
      if (last === "deleted" || (last && FINAL.has(last.status))) return last;
      // the stream ended before a final state: reconnect once, then poll
    } catch (error) {
      if (signal?.aborted) return null;
      if (error.status === 404) return "deleted";
      if (error.status === 401) throw error;
    }
  }
  onMode("polling");
  let shown = "";
  while (!signal?.aborted) {
    try {
      const document = await api.document(documentId, signal);
      const key = `${document.status}/${document.step}/${document.progress}/${document.updated_at}`;
      if (key !== shown) {
        shown = key;
        onStatus(document);
      }
      if (FINAL.has(document.status)) return document;
    } catch (error) {
      if (signal?.aborted) return null;
      if (error.status === 404) return "deleted";
      if (error.status === 401) throw error;
      // transient: keep polling
    }
    await sleep(POLL_MS, signal);
  }
  return null;
}
