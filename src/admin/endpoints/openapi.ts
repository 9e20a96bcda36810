// GET /api/openapi.json: the OpenAPI 3.1 document of every admin endpoint, generated from the registry.
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { openApiDocument } from '../openapi.ts';

export const getOpenApi = defineAdminEndpoint({
  method: 'GET',
  path: '/api/openapi.json',
  auth: 'token',
  summary: 'this document: the OpenAPI 3.1 description of the admin listener',
  handle(_req, res, _params, admin) {
    sendJson(res, 200, openApiDocument(admin.endpoints));
  },
});
