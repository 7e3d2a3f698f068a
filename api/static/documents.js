// The tenant's documents: a table with a status filter, "load more", and delete.

import { api } from "./api.js";
import { el, describeDocument, formatBytes, formatTime, statusLabel } from "./dom.js";

export class DocumentTable {
  constructor({ body, filters, more, note, count }) {
    this.body = body;
    this.filters = filters;
    this.more = more;
    this.note = note;
    this.count = count;
    this.cursor = null;
    this.loaded = 0;
    this.timer = null;
    this.generation = 0;
    filters.addEventListener("change", () => this.load());
    more.addEventListener("click", () => this.load({ append: true }));
  }

  get status() {
    return this.filters.querySelector("input:checked")?.value || "";
  }

  /** Reloads soon; several changes in a row cost one request. */
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 300);
  }

  /** A document changed (seen by an upload row): update its table row in place, or reload. */
  update(document) {
    const current = this.body.querySelector(`tr[data-document-id="${document.document_id}"]`);
    const shown = !this.status || this.status === document.status;
    if (current && shown) current.replaceWith(this.row(document));
    else if (current || shown) this.refreshSoon();
  }

  clear(sentence) {
    this.body.replaceChildren();
    this.more.hidden = true;
    this.count.textContent = "";
    this.note.textContent = sentence;
  }

  async load({ append = false } = {}) {
    const generation = ++this.generation;
    try {
      const page = await api.documents({ status: this.status, cursor: append ? this.cursor : null });
      if (generation !== this.generation) return; // a newer load started meanwhile
      if (!append) {
        this.body.replaceChildren();
        this.loaded = 0;
      }
      for (const document of page.items) this.body.append(this.row(document));
      this.loaded += page.items.length;
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      this.count.textContent = `${this.loaded}${page.next_cursor ? "+" : ""} shown`;
      const filter = this.status ? ` with status “${statusLabel(this.status)}”` : "";
      this.note.textContent = this.loaded ? "" : `No documents${filter} yet.`;
    } catch (error) {
      if (generation !== this.generation) return;
      this.clear(error.message);
    }
  }

  row(document) {
    const failed = document.status === "failed" || document.status === "expired";
    const remove = el(
      "button",
      { type: "button", class: "delete danger small", "aria-label": `Delete ${document.filename}` },
      "Delete",
    );
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      try {
        await api.remove(document.document_id);
        this.refreshSoon();
      } catch (error) {
        remove.disabled = false;
        this.note.textContent = error.message;
      }
    });
    return el(
      "tr",
      { "data-document-id": document.document_id, "data-status": document.status },
      el("td", { class: "file-name" }, document.filename),
      el("td", {}, el("span", { class: `badge status-${document.status}` }, statusLabel(document.status))),
      el("td", { class: failed ? "error" : "" }, describeDocument(document)),
      el("td", { class: "num" }, formatBytes(document.size)),
      el("td", {}, formatTime(document.updated_at)),
      el("td", {}, remove),
    );
  }
}
