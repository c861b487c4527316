// Starts Swagger UI on /schema. Loaded as a file (the page's CSP allows no inline script); the page
// says where the OpenAPI document is, and nothing is fetched from anywhere but this server.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // Swagger UI would otherwise show a badge from validator.swagger.io
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
