// @fastify/http-proxy on fastify: everything to the backend through @fastify/reply-from's default undici
// client (a Pool of 128 connections, no pipelining). Fastify's logger is off, its default.
import { host, peerRequire, port, ready, upstream } from './common.ts';

const require = peerRequire();
const fastify = require('fastify');
const proxy = require('@fastify/http-proxy');

const app = fastify({ keepAliveTimeout: 120_000 });
app.register(proxy, { upstream });
await app.listen({ port, host });
ready();
