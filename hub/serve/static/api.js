// Calls to the hub server: JSON in and out, the API key from this tab's sessionStorage, errors from the envelope.

const KEY_NAME = "mmhub.apiKey";

export class ApiError extends Error {
  constructor(message, status, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME) || "";
}

// The JSON answer of a call; on 401 the page asks for the key (askKey) and tries again.
export async function api(path, options = {}, askKey = null) {
  for (;;) {
    const response = await send(path, options);
    if (response.status === 401 && askKey) {
      const message = await errorMessage(response);
      const key = await askKey(message);
      if (key) {
        sessionStorage.setItem(KEY_NAME, key);
        continue;
      }
      throw new ApiError(message, 401, null);
    }
    if (!response.ok) {
      throw new ApiError(await errorMessage(response), response.status, null);
    }
    return response.json();
  }
}

async function send(path, options) {
  const headers = Object.assign({}, options.headers || {});
  const key = storedKey();
  if (key) headers["Authorization"] = "Bearer " + key;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const init = { method: options.method || "GET", headers };
  if (options.json !== undefined) init.body = JSON.stringify(options.json);
  try {
    return await fetch(path, init);
  } catch (err) {
    throw new ApiError("The server cannot be reached (" + err.message + "). Is 'hub serve' still running?", 0, null);
  }
}

// The message of an error answer: the envelope's, else the status line and the start of the body.
async function errorMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (err) {
    // not JSON: fall through
  }
  return "The server answered " + response.status + " " + response.statusText + (text ? ": " + text.slice(0, 200) : "");
}
