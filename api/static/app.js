// The Chute page: wires the key panel, the drop zone, the document table and search together.

import { api, getKey, onUnauthorized, setKey } from "./api.js";
import { DocumentTable } from "./documents.js";
import { setUpSearch } from "./search.js";
import { UploadList } from "./uploads.js";

const $ = (selector) => document.querySelector(selector);

const keyForm = $("#key-form");
const keyInput = $("#api-key");
const keyMessage = $("#key-message");
const forgetButton = $("#forget-key");
const dropZone = $("#drop-zone");
const fileInput = $("#file-input");

const table = new DocumentTable({
  body: $("#documents tbody"),
  filters: $("#status-filter"),
  more: $("#load-more"),
  note: $("#documents-note"),
  count: $("#documents-count"),
});
const uploads = new UploadList($("#uploads"), {
  onChange: () => table.refreshSoon(),
  onDocument: (document) => table.update(document),
});
setUpSearch({ form: $("#search-form"), input: $("#query"), results: $("#results"), note: $("#search-note") });
$("#refresh").addEventListener("click", () => table.load());

function showKeyState(kind, sentence) {
  keyMessage.textContent = sentence;
  keyMessage.className = `key-message ${kind}`;
  document.body.dataset.key = kind; // "ok" | "bad" | "none" | "checking"
  keyInput.setAttribute("aria-invalid", kind === "bad" ? "true" : "false");
}

onUnauthorized((error) => {
  showKeyState("bad", `${error.message} Enter a valid key above (make one with “chute keys create --tenant NAME”).`);
});

async function useKey(key) {
  showKeyState("checking", "Checking the key…");
  try {
    await api.documents({ limit: 1, key });
  } catch (error) {
    if (error.status !== 401) showKeyState("bad", error.message);
    setKey("");
    forgetButton.hidden = true;
    table.clear("Enter a valid API key to see your documents.");
    return false;
  }
  setKey(key);
  forgetButton.hidden = false;
  showKeyState("ok", "Key accepted. It is kept in this tab only (sessionStorage).");
  table.load();
  return true;
}

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    showKeyState("bad", "Enter your API key first.");
    keyInput.focus();
    return;
  }
  useKey(key);
});

forgetButton.addEventListener("click", () => {
  setKey("");
  keyInput.value = "";
  forgetButton.hidden = true;
  showKeyState("none", "Key forgotten. Enter a key to upload and search.");
  table.clear("Enter your API key to see your documents.");
});

function addFiles(files) {
  if (!files.length) return;
  if (!getKey()) {
    const refused = document.body.dataset.key === "bad" && keyInput.value.trim();
    showKeyState(
      "bad",
      refused
        ? "Nothing was uploaded: the API key entered was refused. Enter a valid key, then pick the files again."
        : "Enter your API key before uploading.",
    );
    keyInput.focus();
    return;
  }
  uploads.add([...files]);
}

fileInput.addEventListener("change", () => {
  addFiles(fileInput.files);
  fileInput.value = ""; // the same file can be picked again
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  addFiles(event.dataTransfer?.files || []);
});

const saved = getKey();
if (saved) {
  keyInput.value = saved;
  useKey(saved);
} else {
  showKeyState("none", "Enter your API key to upload and search.");
  table.clear("Enter your API key to see your documents.");
}
