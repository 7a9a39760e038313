// Swagger UI for the server's OpenAPI description. Its calls carry the API key this browser tab gave the page
// (api.js keeps it in sessionStorage), so the description loads and "Try it out" works on a server with --api-key.

import { storedKey } from "./api.js";

const root = document.getElementById("swagger-ui");

window.ui = window.SwaggerUIBundle({
  url: root.dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  requestInterceptor: (request) => {
    const key = storedKey();
    if (key && !request.headers.Authorization) request.headers.Authorization = "Bearer " + key;
    return request;
  },
});
