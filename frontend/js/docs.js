// @ts-check
// Starts Swagger UI on /docs (frontend/docs.html) with this server's schema; FastAPI's defaults otherwise.
// A plain (non-module) script that runs after swagger-ui-bundle.js: both are `defer`, so they run in order.
window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
