// The page: uploads (drop or pick, one after another), the selected image, the history,
// and the API key prompt.

import {
  ApiError,
  apiKey,
  getImage,
  onKeyChange,
  setApiKey,
  setKeyPrompt,
  uploadImage,
} from "./api.js";
import { h, message } from "./dom.js";
import { setupHistory } from "./history.js";
import { describeError } from "./messages.js";
import { renderViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

// --- API key: asked for when a write answers 401, kept in sessionStorage ---

let openPrompt = null;

/** One prompt at a time: a second request that needs the key waits for the same answer. */
function askForKey(reason) {
  if (openPrompt) return openPrompt;
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason || "";
  $("key-input").value = "";
  openPrompt = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        openPrompt = null;
        resolve(dialog.returnValue === "ok" ? $("key-input").value.trim() || null : null);
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
  return openPrompt;
}

function showKeyState(key) {
  $("key-state").hidden = !key;
}

setKeyPrompt(askForKey);
onKeyChange(showKeyState);
showKeyState(apiKey());
$("forget-key").addEventListener("click", () => setApiKey(null));

// --- history and the selected image ---

const history = setupHistory(
  {
    list: $("history"),
    range: $("history-range"),
    newer: $("history-newer"),
    older: $("history-older"),
    status: $("history-message"),
    refresh: $("history-refresh"),
  },
  openImage,
);

/** An image deleted in one place is gone everywhere it is shown. */
function imageDeleted(id) {
  for (const article of document.querySelectorAll("article.viewer[data-image-id]")) {
    if (article.dataset.imageId === id && !article.classList.contains("deleted")) {
      const name = article.querySelector("h3")?.textContent;
      const text = name ? `“${name}” was deleted.` : "This image was deleted.";
      article.classList.add("deleted");
      article.replaceChildren(message({ text, detail: "" }, "info"));
    }
  }
  history.reload();
}

const viewerEvents = { onDeleted: imageDeleted, onChanged: () => history.reload() };

async function openImage(id) {
  const section = $("detail-section");
  const detail = $("detail");
  section.hidden = false;
  detail.replaceChildren(h("p", { className: "message info" }, "Loading…"));
  try {
    detail.replaceChildren(renderViewer(await getImage(id), viewerEvents));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    detail.replaceChildren(message(describeError(err)));
    if (err.status === 404) history.reload();
  }
  section.scrollIntoView({ behavior: "smooth", block: "start" });
}

// --- uploads ---

const queue = [];
let busy = false;

async function uploadOne({ file, slot }) {
  try {
    const { data } = await uploadImage(file);
    slot.replaceWith(renderViewer(data, viewerEvents));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    slot.classList.add("failed-upload");
    slot.replaceChildren(h("h3", {}, file.name), message(describeError(err, file.name)));
  }
}

async function drain() {
  if (busy) return;
  busy = true;
  try {
    while (queue.length) await uploadOne(queue.shift());
  } finally {
    busy = false;
  }
  history.reload();
}

function addFiles(files) {
  const results = $("results");
  for (const file of files) {
    const slot = h(
      "article",
      { className: "viewer uploading" },
      h("h3", {}, file.name),
      h("p", { className: "message info" }, "Uploading and detecting…"),
    );
    results.prepend(slot);
    queue.push({ file, slot });
  }
  drain();
}

const input = $("file-input");
input.addEventListener("change", () => {
  addFiles([...input.files]);
  input.value = "";
});

const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  addFiles([...event.dataTransfer.files]);
});
// A file dropped next to the drop zone must not replace the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

history.reload();
