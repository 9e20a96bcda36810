// GET /metrics: what Prometheus scrapes (Prometheus text, or OpenMetrics when Accept asks for it). Open to
// scrapers without a token, as /healthz is; 404 when `metrics.enabled` is off.
import { PROBLEM_TYPE, problemBody } from '../../pipeline/problem.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

export const getMetrics = defineAdminEndpoint({
  method: 'GET',
  path: '/metrics',
  auth: 'none',
  async handle(req, res, _params, admin) {
    if (admin.metrics === null) {
      const body = problemBody('TP_ADMIN_NOT_FOUND', 'metrics are not enabled (metrics.enabled)');
      res.writeHead(404, { 'content-type': PROBLEM_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const scrape = await admin.metrics.scrape(req.headers.accept);
    res.writeHead(200, {
      'content-type': scrape.contentType,
      'content-length': Buffer.byteLength(scrape.body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : scrape.body);
  },
});

export default getMetrics;
