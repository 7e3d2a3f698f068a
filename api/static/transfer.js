// Sending a file's bytes straight to the bucket (cross-origin) with XMLHttpRequest, so the page
// sees real upload progress: a presigned POST form for small files, presigned multipart for big ones.

export const PARALLEL_PARTS = 4;
export const PART_RETRIES = 3;

/** The bucket refused or dropped a request; `retryable` is false when trying again cannot help. */
export class TransferError extends Error {
  constructor(message, { retryable = true } = {}) {
    super(message);
    this.name = "TransferError";
    this.retryable = retryable;
  }
}

export class AbortedError extends Error {
  constructor() {
    super("The upload was stopped.");
    this.name = "AbortError";
  }
}

/** S3 error bodies are XML: `<Error><Code>…</Code><Message>…</Message></Error>`. */
function bucketMessage(xhr) {
  const text = xhr.responseText || "";
  try {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const message = doc.querySelector("Message")?.textContent;
    const code = doc.querySelector("Code")?.textContent;
    if (message || code) return [code, message].filter(Boolean).join(": ");
  } catch {
    // not XML
  }
  return text.slice(0, 200);
}

/**
 * One XHR to the bucket. `onProgress(loadedFraction)` gets 0..1 of this request's body.
 * Registers itself with `tracker` so a cancel can abort everything in flight.
 */
function send(method, url, body, { onProgress, tracker }) {
  return new Promise((resolve, reject) => {
    if (tracker.aborted) {
      reject(new AbortedError());
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      tracker.inFlight.delete(xhr);
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr);
        return;
      }
      const detail = bucketMessage(xhr);
      const retryable = xhr.status >= 500 || xhr.status === 408 || xhr.status === 429;
      reject(
        new TransferError(`The bucket refused the upload (HTTP ${xhr.status})${detail ? `: ${detail}` : "."}`, {
          retryable,
        }),
      );
    };
    xhr.onerror = () => {
      tracker.inFlight.delete(xhr);
      reject(
        new TransferError(
          "The storage endpoint could not be reached (network error or CORS refused). Check the bucket's CORS rule.",
        ),
      );
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      tracker.inFlight.delete(xhr);
      reject(new AbortedError());
    };
    tracker.inFlight.add(xhr);
    xhr.send(body);
  });
}

/** Keeps the XHRs of one file's upload so that `abort()` stops every one of them at once. */
export class TransferTracker {
  constructor() {
    this.inFlight = new Set();
    this.aborted = false;
  }

  abort() {
    this.aborted = true;
    for (const xhr of [...this.inFlight]) xhr.abort();
    this.inFlight.clear();
  }
}

/** Presigned POST: the policy's fields, then the file as the last field, named `file`. */
export async function postForm(upload, file, { onBytes, tracker }) {
  const form = new FormData();
  for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
  form.append("file", file);
  await send("POST", upload.url, form, {
    tracker,
    onProgress: (fraction) => onBytes(Math.round(fraction * file.size)),
  });
  return null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Presigned multipart: PUT each slice to its URL, PARALLEL_PARTS at a time, each retried up to
 * PART_RETRIES times; returns the `[{part_number, etag}]` list the complete endpoint needs.
 */
export async function putParts(upload, file, { onBytes, tracker, onRetry = () => {} }) {
  const size = upload.part_size;
  const sent = new Map(); // part_number -> bytes of that part sent so far
  const report = () => {
    let total = 0;
    for (const bytes of sent.values()) total += bytes;
    onBytes(Math.min(total, file.size));
  };

  async function putPart(part) {
    const start = (part.part_number - 1) * size;
    const blob = file.slice(start, Math.min(start + size, file.size));
    for (let attempt = 0; ; attempt += 1) {
      try {
        const xhr = await send("PUT", part.url, blob, {
          tracker,
          onProgress: (fraction) => {
            sent.set(part.part_number, Math.round(fraction * blob.size));
            report();
          },
        });
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) {
          throw new TransferError(
            "The bucket did not expose the ETag header; its CORS rule must list ETag in ExposeHeaders.",
            { retryable: false },
          );
        }
        return { part_number: part.part_number, etag };
      } catch (error) {
        sent.set(part.part_number, 0); // a retry sends the whole part again
        report();
        if (error instanceof AbortedError || tracker.aborted) throw new AbortedError();
        if (!error.retryable || attempt >= PART_RETRIES) {
          throw new TransferError(`Part ${part.part_number}: ${error.message}`, { retryable: false });
        }
        onRetry(part.part_number, attempt + 1, error);
        await sleep(300 * 2 ** attempt);
      }
    }
  }

  const queue = [...upload.parts];
  const done = [];
  let failure = null;
  async function worker() {
    while (queue.length && !failure && !tracker.aborted) {
      const part = queue.shift();
      try {
        done.push(await putPart(part));
      } catch (error) {
        failure = failure || error;
        tracker.abort(); // one part gave up: stop the others too
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, queue.length) }, worker));
  if (failure) throw failure;
  if (tracker.aborted) throw new AbortedError();
  return done.sort((a, b) => a.part_number - b.part_number);
}
