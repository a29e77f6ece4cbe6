// One image: the picture with its circles (an SVG overlay in the image's own pixel coordinates,
// so it scales with the picture), a minimum-score slider that hides weaker circles live, the
// table of circles, and the actions (detect again, delete, annotated PNG).

import { ApiError, deleteImage, detectAgain } from "./api.js";
import { h, message, s } from "./dom.js";
import { describeError, describeStatus, humanBytes } from "./messages.js";

const fixed = (value, digits = 1) => Number(value).toFixed(digits);

function circlesOverlay(image) {
  const svg = s("svg", {
    className: "overlay",
    viewBox: `0 0 ${image.width} ${image.height}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  for (const obj of image.objects) {
    svg.append(
      s(
        "circle",
        {
          className: "det",
          cx: obj.center.x,
          cy: obj.center.y,
          r: obj.radius,
          "data-rank": obj.rank,
          "data-score": obj.score,
          "vector-effect": "non-scaling-stroke",
        },
        s("title", {}, `#${obj.rank + 1}: score ${fixed(obj.score, 2)}`),
      ),
    );
  }
  return svg;
}

/** Pointing at a row of the table marks its circle on the picture. */
function highlight(row, rank, on) {
  const circle = row.closest("article")?.querySelector(`circle.det[data-rank="${rank}"]`);
  circle?.classList.toggle("active", on);
}

function objectsTable(image) {
  if (!image.objects.length) return null;
  return h(
    "div",
    { className: "table-wrap" },
    h(
      "table",
      { className: "objects" },
      h("caption", {}, "Detected circles, best first (pixels)"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "#"),
          h("th", { scope: "col" }, "Centre x"),
          h("th", { scope: "col" }, "Centre y"),
          h("th", { scope: "col" }, "Radius"),
          h("th", { scope: "col" }, "Score"),
        ),
      ),
      h(
        "tbody",
        {},
        image.objects.map((obj) =>
          h(
            "tr",
            {
              "data-rank": obj.rank,
              "data-score": obj.score,
              onmouseenter: (event) => highlight(event.currentTarget, obj.rank, true),
              onmouseleave: (event) => highlight(event.currentTarget, obj.rank, false),
            },
            h("td", {}, obj.rank + 1),
            h("td", {}, fixed(obj.center.x)),
            h("td", {}, fixed(obj.center.y)),
            h("td", {}, fixed(obj.radius)),
            h("td", {}, fixed(obj.score, 3)),
          ),
        ),
      ),
    ),
  );
}

/**
 * Render `image` (the API's ImageOut) into a new <article>.
 * `onDeleted(id)` and `onChanged(image)` tell the page when the image went away or changed.
 */
export function renderViewer(image, { onDeleted = () => {}, onChanged = () => {} } = {}) {
  const article = h("article", { className: "viewer", "data-image-id": image.id });
  let threshold = image.score_threshold ?? 0;

  function applyThreshold() {
    let shown = 0;
    for (const el of article.querySelectorAll("circle.det, tr[data-score]")) {
      const hide = Number(el.dataset.score) < threshold;
      el.classList.toggle("is-hidden", hide);
      if (!hide && el.tagName.toLowerCase() === "circle") shown += 1;
    }
    const count = article.querySelector(".shown-count");
    if (count) {
      const total = image.objects.length;
      count.textContent = `${shown} of ${total} circle${total === 1 ? "" : "s"} shown`;
    }
    const out = article.querySelector("output");
    if (out) out.textContent = fixed(threshold, 2);
  }

  function showProblem(problem, kind = "error") {
    const slot = article.querySelector(".problem");
    slot.replaceChildren(problem ? message(problem, kind) : "");
  }

  async function runDetect(button) {
    button.disabled = true;
    button.textContent = "Detecting…";
    try {
      const fresh = await detectAgain(image.id, threshold);
      image = fresh;
      draw();
      onChanged(fresh);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showProblem(describeError(err));
      button.disabled = false;
      button.textContent = "Detect again";
    }
  }

  async function runDelete(button) {
    if (!window.confirm(`Delete “${image.filename}” and its circles?`)) return;
    button.disabled = true;
    try {
      await deleteImage(image.id);
      article.replaceChildren(
        message({ text: `“${image.filename}” was deleted.`, detail: "" }, "info"),
      );
      article.classList.add("deleted");
      onDeleted(image.id);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showProblem(describeError(err));
      button.disabled = false;
    }
  }

  function draw() {
    const status = describeStatus(image);
    const picture = h("img", {
      src: image.links.file,
      alt: `${image.filename} (${image.width} × ${image.height})`,
      width: image.width,
      height: image.height,
      decoding: "async",
    });
    const overlay = circlesOverlay(image);
    const stage = h("div", { className: "stage" }, picture, overlay);
    stage.style.setProperty("--aspect", String(image.width / image.height));
    picture.addEventListener(
      "error",
      () => {
        // Browsers cannot show TIFF: fall back to the server's own drawing of the circles.
        picture.src = image.links.annotated;
        overlay.remove();
        stage.after(
          h("p", { className: "hint" }, "This browser cannot show this format; showing the " +
            "server's annotated PNG (the slider filters only the table)."),
        );
      },
      { once: true },
    );

    const slider = h("input", {
      type: "range",
      min: 0,
      max: 1,
      step: 0.01,
      value: threshold,
      className: "threshold",
      "aria-label": "Minimum score",
      oninput: (event) => {
        threshold = Number(event.target.value);
        applyThreshold();
      },
    });
    const controls = image.status === "done"
      ? h(
          "div",
          { className: "controls" },
          h("label", {}, "Minimum score ", slider, " ", h("output", {}, fixed(threshold, 2))),
          h("span", { className: "shown-count", role: "status" }),
        )
      : null;
    const empty = image.status === "done" && !image.objects.length
      ? h("p", { className: "hint" }, "No circles found at this minimum score.")
      : null;

    const detectButton = h("button", {
      type: "button",
      className: "detect",
      onclick: (event) => runDetect(event.currentTarget),
    }, "Detect again");
    const deleteButton = h("button", {
      type: "button",
      className: "delete danger",
      onclick: (event) => runDelete(event.currentTarget),
    }, "Delete");

    article.className = `viewer status-${image.status}`;
    const parts = [
      h(
        "header",
        {},
        h("h3", {}, image.filename || "(no name)"),
        h("span", { className: `badge ${image.status}` }, image.status),
        h(
          "p",
          { className: "meta" },
          `${image.width} × ${image.height} ${image.format} · ${humanBytes(image.size_bytes)}`,
          image.model_version ? ` · model ${image.model_name} ${image.model_version}` : "",
        ),
      ),
      h("div", { className: "problem" }, status ? message(status, "warning") : null),
      stage,
      controls,
      empty,
      objectsTable(image),
      h(
        "div",
        { className: "actions" },
        detectButton,
        h("a", { href: image.links.annotated, target: "_blank", rel: "noopener" }, "Annotated PNG"),
        deleteButton,
      ),
      image.status === "done"
        ? h("p", { className: "hint" }, "“Detect again” uses the slider's minimum score.")
        : null,
    ];
    // replaceChildren would write a null as the text "null"
    article.replaceChildren(...parts.filter(Boolean));
    applyThreshold();
  }

  draw();
  return article;
}
