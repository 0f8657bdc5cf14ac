// Render a service's OpenAPI spec with Swagger UI, served from our own static files (no CDN).
(function () {
  const node = document.getElementById("swagger-ui");
  if (!node || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: node.dataset.specUrl,
    domNode: node,
    deepLinking: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    defaultModelsExpandDepth: 0,
    validatorUrl: null, // no badge from an online validator: nothing is fetched from elsewhere
  });
})();
