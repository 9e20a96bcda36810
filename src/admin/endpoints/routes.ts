// GET /api/routes: the running routes in match order: name, match, what they end in, their plugins' names.
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runningGateway } from '../running.ts';

export const getRoutes = defineAdminEndpoint({
  method: 'GET',
  path: '/api/routes',
  auth: 'token',
  summary: 'the running routes: name, match, terminal (upstream, respond, redirect) and plugin names',
  handle(_req, res, _params, admin) {
    const snapshot = runningGateway(admin).current;
    const routes = snapshot.config.routes.map((r, i) => ({
      name: snapshot.routes[i]?.name ?? r.name ?? `routes[${i}]`,
      match: r.match,
      terminal: r.upstream !== undefined ? 'upstream' : r.respond !== undefined ? 'respond' : 'redirect',
      ...(r.upstream !== undefined ? { upstream: r.upstream } : {}),
      plugins: r.plugins.map((p) => p.name),
    }));
    sendJson(res, 200, {
      version: snapshot.version,
      globalPlugins: snapshot.config.plugins.map((p) => p.name),
      routes,
    });
  },
});
