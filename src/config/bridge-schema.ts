// The `bridge` terminal's config: WebSocket <-> HTTP translation (src/terminals/bridge.ts).
import { z } from 'zod';

export const bridge = z
  .strictObject({
    upstream: z
      .string()
      .min(1)
      .meta({
        description: 'the upstream (a name under upstreams; http:// or https:// targets)',
        examples: ['ticker-ws'],
      }),
    to: z.enum(['sse', 'http']).meta({
      description:
        "sse: a client's GET streams the upstream WebSocket's messages as Server-Sent Events; http: a WebSocket client's messages become POSTs and their answers messages back",
      examples: ['sse'],
    }),
    path: z
      .string()
      .regex(/^\/[^\s?#]*$/, { message: 'expected a path starting with / (no query, no spaces)' })
      .meta({
        description:
          "the upstream path: the WebSocket's (sse) or the one POSTed to (http); the client's query is appended",
        examples: ['/ws'],
      }),
    contentType: z
      .string()
      .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\s*;.*)?$/, {
        message: 'expected a media type such as application/json',
      })
      .optional()
      .meta({
        description:
          'to: http: the Content-Type of each POST (default: application/json for a JSON text message, text/plain otherwise, application/octet-stream for binary)',
        examples: ['application/json'],
      }),
  })
  .meta({
    description:
      'translate between WebSocket and HTTP: an upstream WebSocket as SSE, or WebSocket clients in front of an HTTP API',
    examples: [{ upstream: 'ticker-ws', to: 'sse', path: '/ws' }],
  });

export type BridgeConfig = z.output<typeof bridge>;
