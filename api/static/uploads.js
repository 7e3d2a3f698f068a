// One row per picked file: presign, send the bytes to the bucket, complete, then follow the pipeline.

import { ApiError, api } from "./api.js";
import { el, describeDocument, formatBytes, formatSeconds, statusLabel } from "./dom.js";
import { FINAL, watchDocument } from "./events.js";
import { TransferTracker, postForm, putParts } from "./transfer.js";

const FILES_AT_ONCE = 3;

class FileRow {
  constructor(file, { onChange, onDocument }) {
    this.file = file;
    this.onChange = onChange; // something changed: the document list may need a reload
    this.onDocument = onDocument; // a fresh document JSON for the list
    this.documentId = null;
    this.status = "waiting";
    this.tracker = new TransferTracker();
    this.requests = new AbortController(); // presign/complete/events requests of this row
    this.stopped = false;
    this.node = this.render();
    this.setUpload(0);
    this.setStatus("waiting", "Waiting for its turn to upload");
  }

  render() {
    const id = `row-${crypto.randomUUID()}`;
    this.uploadBar = el("progress", { max: 100, value: 0, id: `${id}-up`, class: "upload-bar" });
    this.uploadText = el("span", { class: "upload-text" });
    this.pipelineBar = el("progress", { max: 100, value: 0, id: `${id}-pipe`, class: "pipeline-bar" });
    this.pipelineText = el("span", { class: "pipeline-text" }, "Not started");
    this.badge = el("span", { class: "badge" });
    this.message = el("p", { class: "message", role: "status", "aria-live": "polite" });
    this.cancelButton = el(
      "button",
      { type: "button", class: "cancel", onclick: () => this.cancel(), "aria-label": `Cancel ${this.file.name}` },
      "Cancel",
    );
    this.deleteButton = el(
      "button",
      {
        type: "button",
        class: "delete danger",
        onclick: () => this.remove(),
        "aria-label": `Delete ${this.file.name}`,
        hidden: true,
      },
      "Delete",
    );
    return el(
      "li",
      { class: "file-row", "data-filename": this.file.name },
      el(
        "div",
        { class: "file-head" },
        el("span", { class: "file-name", title: this.file.name }, this.file.name),
        el("span", { class: "file-size" }, formatBytes(this.file.size)),
        this.badge,
        el("span", { class: "actions" }, this.cancelButton, this.deleteButton),
      ),
      el(
        "div",
        { class: "bars" },
        el("label", { for: `${id}-up` }, "Upload"),
        this.uploadBar,
        this.uploadText,
        el("label", { for: `${id}-pipe` }, "Pipeline"),
        this.pipelineBar,
        this.pipelineText,
      ),
      this.message,
    );
  }

  setUpload(bytes) {
    const percent = this.file.size ? Math.floor((bytes / this.file.size) * 100) : 100;
    this.uploadBar.value = percent;
    this.uploadBar.setAttribute("aria-valuetext", `${percent} %`);
    this.uploadText.textContent = `${percent} % (${formatBytes(bytes)} of ${formatBytes(this.file.size)})`;
    this.node.dataset.uploadPercent = String(percent);
  }

  setStatus(status, sentence, { error = false } = {}) {
    this.status = status;
    this.node.dataset.status = status;
    this.badge.textContent = statusLabel(status);
    this.badge.className = `badge status-${status}`;
    this.message.textContent = sentence;
    this.message.classList.toggle("error", error);
    const final = FINAL.has(status) || status === "deleted";
    this.cancelButton.hidden = final;
    this.deleteButton.hidden = !this.documentId || status === "deleted";
  }

  fail(error) {
    this.setStatus("failed", error.message || String(error), { error: true });
    if (this.uploadBar.value < 100) this.uploadText.textContent = `Not uploaded (${formatBytes(this.file.size)})`;
    this.pipelineText.textContent = "Not started";
  }

  /** A document JSON from the events stream or a poll. */
  showDocument(document) {
    const { status } = document;
    this.onDocument(document);
    if (status === "processing") {
      this.pipelineBar.value = document.progress;
      this.pipelineText.textContent = `${describeDocument(document)}`;
    } else if (status === "indexed") {
      this.pipelineBar.value = 100;
      this.pipelineText.textContent = "Done";
    } else if (status === "queued") {
      this.pipelineBar.value = 0;
      this.pipelineText.textContent = "Queued";
    } else if (FINAL.has(status)) {
      this.pipelineText.textContent = statusLabel(status);
    }
    if (status === "awaiting_upload" && this.status === "uploading") return; // the bar says more
    this.node.dataset.chunkCount = String(document.chunk_count);
    this.setStatus(status, describeDocument(document), { error: status === "failed" || status === "expired" });
  }

  async run() {
    if (this.stopped) return;
    const signal = this.requests.signal;
    try {
      const presigned = await api.presign(this.file, signal);
      this.documentId = presigned.document_id;
      this.node.dataset.documentId = this.documentId;
      this.onChange(); // the list now holds it, awaiting upload
      if (this.stopped) return;
      const upload = presigned.upload;
      const multipart = upload.method === "MULTIPART";
      this.node.dataset.method = upload.method;
      this.setStatus(
        "uploading",
        multipart
          ? `Uploading in ${upload.parts.length} parts of ${formatBytes(upload.part_size)}, 4 at a time`
          : "Uploading to the bucket",
      );
      const started = performance.now();
      const options = {
        tracker: this.tracker,
        onBytes: (bytes) => this.setUpload(bytes),
        onRetry: (part, attempt) => {
          this.message.textContent = `Part ${part} failed; retrying (attempt ${attempt + 1} of 4)`;
          this.node.dataset.retries = String(Number(this.node.dataset.retries || 0) + 1);
        },
      };
      const parts = multipart ? await putParts(upload, this.file, options) : await postForm(upload, this.file, options);
      const elapsed = performance.now() - started;
      this.node.dataset.uploadMs = String(Math.round(elapsed));
      this.setUpload(this.file.size);
      this.uploadText.textContent += ` in ${formatSeconds(elapsed)}`;
      this.setStatus("completing", "Uploaded; Chute is checking the object");
      const queued = await api.complete(this.documentId, parts, signal);
      this.setStatus(queued.status, "Queued: waiting for a worker");
      this.onChange();
      this.watch(); // follows the pipeline; the upload slot is free for the next file
    } catch (error) {
      if (this.stopped || error.name === "AbortError") return;
      this.fail(error);
      this.onChange();
    }
  }

  async watch() {
    try {
      const result = await watchDocument(this.documentId, {
        signal: this.requests.signal,
        onStatus: (document) => this.showDocument(document),
        onMode: (mode) => {
          this.node.dataset.watch = mode;
        },
      });
      if (result === "deleted") this.markDeleted();
    } catch (error) {
      this.message.textContent = error.message;
      this.message.classList.add("error");
    }
    this.onChange();
  }

  markDeleted() {
    this.stopped = true;
    this.setStatus("deleted", "Deleted: its chunks and stored file are gone");
  }

  stopTransfers() {
    this.stopped = true;
    this.tracker.abort(); // in-flight XHRs to the bucket
    this.requests.abort(); // presign/complete/events
  }

  async cancel() {
    this.cancelButton.disabled = true;
    const wasUploading = ["waiting", "uploading", "completing"].includes(this.status);
    try {
      if (wasUploading) this.stopTransfers();
      if (!this.documentId) {
        this.setStatus("cancelled", "Cancelled before the upload started");
        return;
      }
      const document = await api.cancel(this.documentId);
      this.showDocument(document);
      this.message.textContent = wasUploading
        ? "Cancelled: the upload was stopped and its parts discarded"
        : describeDocument(document);
    } catch (error) {
      this.message.textContent = error.message;
      this.message.classList.add("error");
    } finally {
      this.cancelButton.disabled = false;
      this.onChange();
    }
  }

  async remove() {
    if (!this.documentId) return;
    this.deleteButton.disabled = true;
    try {
      this.stopTransfers();
      await api.remove(this.documentId);
      this.markDeleted();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.markDeleted();
      else {
        this.message.textContent = error.message;
        this.message.classList.add("error");
      }
    } finally {
      this.deleteButton.disabled = false;
      this.onChange();
    }
  }
}

/** The upload list: adds rows and runs FILES_AT_ONCE of them at a time. */
export class UploadList {
  constructor(listNode, { onChange, onDocument }) {
    this.listNode = listNode;
    this.onChange = onChange;
    this.onDocument = onDocument;
    this.pending = [];
    this.running = 0;
  }

  add(files) {
    for (const file of files) {
      const row = new FileRow(file, { onChange: this.onChange, onDocument: this.onDocument });
      this.listNode.prepend(row.node);
      this.pending.push(row);
    }
    this.pump();
  }

  pump() {
    while (this.running < FILES_AT_ONCE && this.pending.length) {
      const row = this.pending.shift();
      this.running += 1;
      row.run().finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }
}
