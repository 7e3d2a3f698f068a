// Search: the best passages with their file names and pages.

import { api } from "./api.js";
import { el } from "./dom.js";

const PASSAGE_CHARS = 600;

function excerpt(text) {
  const clean = text.replace(/\s+/g, " ").trim();
  return clean.length > PASSAGE_CHARS ? `${clean.slice(0, PASSAGE_CHARS)}…` : clean;
}

export function setUpSearch({ form, input, results, note }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (!query) {
      note.textContent = "Type what you are looking for.";
      return;
    }
    note.textContent = "Searching…";
    form.setAttribute("aria-busy", "true");
    try {
      const answer = await api.search(query);
      results.replaceChildren(
        ...answer.results.map((hit, index) =>
          el(
            "li",
            { class: "hit", "data-document-id": hit.document_id },
            el(
              "div",
              { class: "hit-head" },
              el("span", { class: "rank" }, `${index + 1}.`),
              el("span", { class: "file-name" }, hit.filename),
              hit.page ? el("span", { class: "page" }, `page ${hit.page}`) : null,
              el("span", { class: "score", title: "relevance score" }, `score ${hit.score.toFixed(3)}`),
            ),
            el("p", { class: "passage" }, excerpt(hit.text)),
          ),
        ),
      );
      note.textContent = answer.results.length
        ? `${answer.results.length} passage${answer.results.length === 1 ? "" : "s"} in ${Math.round(answer.took_ms)} ms`
        : "No passage matched. Indexed documents only are searched.";
    } catch (error) {
      results.replaceChildren();
      note.textContent = error.message;
    } finally {
      form.removeAttribute("aria-busy");
    }
  });
}
