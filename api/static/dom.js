// Small DOM and formatting helpers. Text always goes in through textContent, never as HTML.

/** `el("p", {class: "x", "data-id": 1}, "text", child)` */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatSeconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const STATUS_LABELS = {
  waiting: "Waiting",
  uploading: "Uploading",
  completing: "Checking upload",
  awaiting_upload: "Awaiting upload",
  queued: "Queued",
  processing: "Processing",
  indexed: "Indexed",
  failed: "Failed",
  cancelled: "Cancelled",
  expired: "Expired",
  deleted: "Deleted",
};

export function statusLabel(status) {
  return STATUS_LABELS[status] || status;
}

const STEP_LABELS = {
  downloading: "Downloading from the bucket",
  extracting: "Extracting text",
  ocr: "Reading scanned pages (OCR)",
  chunking: "Chunking",
  embedding: "Embedding",
  storing: "Storing chunks",
};

export function stepLabel(step) {
  return STEP_LABELS[step] || step || "Starting";
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** What a person should read about a document in one line. */
export function describeDocument(document) {
  switch (document.status) {
    case "indexed":
      return `Indexed: ${document.chunk_count} chunk${document.chunk_count === 1 ? "" : "s"}`;
    case "failed":
    case "expired":
      return document.error ? `${document.error.message} (${document.error.code})` : statusLabel(document.status);
    case "processing":
      return `${stepLabel(document.step)}: ${document.progress} %`;
    case "queued":
      return "Queued: waiting for a worker";
    case "awaiting_upload":
      return "Waiting for the upload to finish";
    case "cancelled":
      return "Cancelled";
    default:
      return statusLabel(document.status);
  }
}
