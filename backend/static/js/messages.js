// Errors and image states in plain words; the server's own message follows as a detail.

const FORMATS = "PNG, JPEG, BMP, TIFF or WebP";

function quoted(name) {
  return name ? `“${name}”` : "The image";
}

/** "20971520 bytes" -> "20 MiB" (for the server's size limits). */
export function humanBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${+(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** {text, detail} for an ApiError met while handling `filename` (may be empty). */
export function describeError(err, filename = "") {
  const name = quoted(filename);
  const detail = err.message || "";
  switch (err.status) {
    case 0:
      return {
        text: filename
          ? `${name} could not be sent: the server did not answer (it may be down, or the file too large).`
          : "The server could not be reached. Check that it is running and try again.",
        detail,
      };
    case 401:
      return { text: "This needs a valid API key. Nothing was changed.", detail };
    case 404:
      return { text: "This image no longer exists (it was deleted).", detail };
    case 413: {
      const limit = /limit is (\d+)/.exec(detail);
      if (limit) {
        return { text: `${name} is too large: the limit is ${humanBytes(+limit[1])}.`, detail };
      }
      return { text: `${name} has too many pixels to process. Try a smaller image.`, detail };
    }
    case 415:
      return { text: `${name} is not an image this service can read. Use ${FORMATS}.`, detail };
    case 422:
      if (filename) {
        return {
          text: `${name} could not be read as an image: it is empty, damaged, cut short or too small.`,
          detail,
        };
      }
      return { text: "The model server refused this image.", detail };
    case 503:
      if (err.body && err.body.image_id) {
        // Only re-detection answers 503 with the image it kept (an upload answers 202).
        return {
          text: "Model server unavailable: image kept, detection pending. Try “Detect again” later.",
          detail,
        };
      }
      return {
        text: "The server is busy or its storage or database is unavailable. Try again later.",
        detail,
      };
    default:
      return { text: `Something went wrong on the server (error ${err.status}). Try again.`, detail };
  }
}

/** A notice for an image whose detection did not finish, or null when it is done. */
export function describeStatus(image) {
  if (image.status === "pending") {
    return {
      text: "Image kept, detection pending: the model server is unavailable. Use “Detect again” later.",
      detail: image.error || "",
    };
  }
  if (image.status === "failed") {
    return { text: "Image kept, but the model server refused it.", detail: image.error || "" };
  }
  return null;
}
