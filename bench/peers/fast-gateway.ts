// fast-gateway: one catch-all route to the backend, as its README shows (restana + fast-proxy-lite, whose
// default http.Agent keeps connections alive). `pathRegex: '*'` with `prefix: '/'` registers `/*`, and
// `prefixRewrite: '/'` keeps the path as it came (the default '' would strip the leading slash).
import { host, peerRequire, port, ready, upstream } from './common.ts';

const gateway = peerRequire()('fast-gateway');
const server = gateway({
  routes: [{ prefix: '/', pathRegex: '*', prefixRewrite: '/', target: upstream }],
});
const http = await server.start(port, host);
http.keepAliveTimeout = 120_000;
ready();
