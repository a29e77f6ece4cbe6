// The backend's public JSON API (/api/v1/images/...), and the API key it may ask for.
//
// Every call goes through `call`, so that a 401 on a write asks the user for the key once,
// keeps it in sessionStorage (this tab only) and repeats the request with `X-API-Key`.

export const IMAGES = "/api/v1/images/";
const KEY_STORAGE = "circle-detector.api-key";

/** A failed call: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message, body = {}) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let askForKey = async () => null;
const keyListeners = [];

/** `ask(reason)` resolves to a key, or null when the user gives up. */
export function setKeyPrompt(ask) {
  askForKey = ask;
}

export function onKeyChange(listener) {
  keyListeners.push(listener);
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  for (const listener of keyListeners) listener(apiKey());
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 200) };
  }
}

function withParams(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** One request; resolves to {status, data} for 2xx, rejects with ApiError otherwise. */
async function call(method, path, { params, body } = {}) {
  const url = withParams(path, params);
  for (;;) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers["X-API-Key"] = key;
    let response;
    try {
      response = await fetch(url, { method, headers, body });
    } catch (err) {
      throw new ApiError(0, `the server could not be reached (${err.message})`);
    }
    const data = await readBody(response);
    if (response.ok) return { status: response.status, data };
    const message = data.error || `HTTP ${response.status}`;
    if (response.status === 401) {
      if (key) setApiKey(null); // a refused key is not kept
      const given = await askForKey(
        key ? `The key was refused (${message}).` : `The server says: ${message}.`,
      );
      if (given) {
        setApiKey(given);
        continue;
      }
    }
    throw new ApiError(response.status, message, data);
  }
}

/** Upload one file: {status: 201 | 202, data: image}. */
export function uploadImage(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return call("POST", IMAGES, { body: form });
}

export async function listImages(limit, offset) {
  return (await call("GET", IMAGES, { params: { limit, offset } })).data;
}

export async function getImage(id) {
  return (await call("GET", `${IMAGES}${encodeURIComponent(id)}`)).data;
}

export async function detectAgain(id, scoreThreshold) {
  const path = `${IMAGES}${encodeURIComponent(id)}/detect`;
  return (await call("POST", path, { params: { score_threshold: scoreThreshold } })).data;
}

export async function deleteImage(id) {
  await call("DELETE", `${IMAGES}${encodeURIComponent(id)}`);
}
