// GET /metrics: what Prometheus scrapes (Prometheus text, or OpenMetrics when Accept asks for it). Open to
// scrapers without a token, as /healthz is; 404 when `metrics.enabled` is off.
import { sendProblem } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

export const getMetrics = defineAdminEndpoint({
  method: 'GET',
  path: '/metrics',
  auth: 'none',
  async handle(req, res, _params, admin) {
    const metrics = admin.metrics;
    if (metrics === null) {
      sendProblem(res, 'TP_ADMIN_NOT_FOUND', 'metrics are not enabled (metrics.enabled)');
      return;
    }
    const scrape = await metrics.scrape(req.headers.accept);
    res.writeHead(200, {
      'content-type': scrape.contentType,
      'content-length': Buffer.byteLength(scrape.body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : scrape.body);
  },
});
