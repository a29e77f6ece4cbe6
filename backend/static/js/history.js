// Earlier uploads: a page of thumbnails (newest first) with Newer/Older buttons.

import { ApiError, listImages } from "./api.js";
import { h, message } from "./dom.js";
import { describeError } from "./messages.js";

export const PAGE_SIZE = 12;

/** Wire the history section; `onOpen(id)` opens an image. Returns {reload, forget}. */
export function setupHistory({ list, range, newer, older, status, refresh }, onOpen) {
  let offset = 0;
  let total = 0;

  function thumb(item) {
    return h(
      "li",
      { "data-image-id": item.id },
      h(
        "button",
        { type: "button", className: "thumb", onclick: () => onOpen(item.id) },
        h("img", {
          // The server's small JPEG (any format, TIFF included), never the original.
          src: item.links.thumbnail,
          alt: "",
          loading: "lazy",
          width: item.width,
          height: item.height,
        }),
        h("span", { className: "name" }, item.filename || "(no name)"),
        h(
          "span",
          { className: "facts" },
          h("span", { className: `badge ${item.status}` }, item.status),
          item.status === "done"
            ? ` ${item.num_detections} circle${item.num_detections === 1 ? "" : "s"}`
            : "",
        ),
      ),
    );
  }

  async function reload() {
    let page;
    try {
      page = await listImages(PAGE_SIZE, offset);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      status.replaceChildren(message(describeError(err)));
      return;
    }
    total = page.total;
    if (offset > 0 && offset >= total) {
      offset = Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
      return reload();
    }
    status.replaceChildren(total ? "" : "Nothing uploaded yet.");
    list.replaceChildren(...page.items.map(thumb));
    range.textContent = total
      ? `${offset + 1}–${offset + page.items.length} of ${total}`
      : "";
    newer.disabled = offset === 0;
    older.disabled = offset + page.items.length >= total;
  }

  newer.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    reload();
  });
  older.addEventListener("click", () => {
    offset += PAGE_SIZE;
    reload();
  });
  refresh.addEventListener("click", () => reload());
  return { reload };
}
