// Swagger UI for the server's OpenAPI description. Its calls carry the API key this browser tab gave the page
// (api.js keeps it in sessionStorage), so the description loads and "Try it out" works on a server with --api-key.
// A tab that has no key yet for such a server is sent to the page, which asks for it.

import { storedKey } from "./api.js";

const root = document.getElementById("swagger-ui");
const url = root.dataset.openapi;

function withKey(headers) {
  const key = storedKey();
  if (key && !headers.Authorization) headers.Authorization = "Bearer " + key;
  return headers;
}

async function start() {
  const probe = await fetch(url, { headers: withKey({}) });
  if (probe.status === 401) {
    const page = new URL("./", document.baseURI).href;
    const link = Object.assign(document.createElement("a"), { href: page, textContent: "the page" });
    const note = document.createElement("p");
    note.className = "key-needed";
    note.append("This server needs an API key. Open ", link, ", give it the key there, then come back to /docs ",
      "in the same browser tab.");
    root.replaceChildren(note);
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    requestInterceptor: (request) => { withKey(request.headers); return request; },
  });
}

start();
