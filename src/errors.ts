// The one catalogue of every error Turnpike can answer or print. Tests and users match on `code`;
// titles and statuses are stable. docs/errors.md lists the same table.

export interface ErrorSpec {
  readonly status: number;
  readonly title: string;
}

export const ERRORS = {
  // Requests (answered as application/problem+json)
  TP_ROUTE_NOT_FOUND: { status: 404, title: 'No route matches this request' },
  TP_VERSION_NOT_FOUND: { status: 404, title: 'No route serves this path in the requested API version' },
  TP_VERSION_SUNSET: { status: 410, title: 'This API version has been retired (its sunset date has passed)' },
  TP_UNAUTHENTICATED: { status: 401, title: 'Authentication is required' },
  TP_FORBIDDEN: { status: 403, title: 'Access to this resource is not allowed' },
  TP_CLIENT_CERT_REQUIRED: { status: 403, title: 'This route requires a verified client certificate' },
  TP_PURGE_FORBIDDEN: { status: 403, title: 'Purging the cache is not allowed from here' },
  TP_IP_FORBIDDEN: { status: 403, title: 'Requests from this address are not allowed' },
  TP_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  TP_CONCURRENCY_LIMITED: { status: 503, title: 'Too many requests in progress' },
  TP_AUTH_UNAVAILABLE: { status: 503, title: 'The identity provider could not be reached to check the credential' },
  TP_AUTHZ_UNAVAILABLE: {
    status: 503,
    title: 'The authorization service (forward-auth) is down or did not answer in time',
  },
  // The status and body are the authorization service's; the code names the refusal in the access log.
  TP_AUTHZ_DENIED: { status: 403, title: 'The authorization service (forward-auth) refused the request' },
  TP_STORE_UNAVAILABLE: { status: 503, title: 'A shared store the gateway needs is unavailable' },
  TP_BAD_REQUEST: { status: 400, title: 'Malformed request' },
  TP_BAD_PATH: { status: 400, title: 'The request path is ambiguous or not allowed' },
  TP_METHOD_NOT_ALLOWED: { status: 405, title: 'This method is not allowed' },
  TP_MISDIRECTED_REQUEST: { status: 421, title: 'This connection is not for the requested host' },
  TP_REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time' },
  TP_NOT_CACHED: { status: 504, title: 'Not in the cache, and the request said only-if-cached' },
  TP_RANGE_NOT_SATISFIABLE: { status: 416, title: 'The requested range is outside the body' },
  TP_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  TP_BAD_REQUEST_BODY: { status: 400, title: 'The request body could not be parsed for the transform the route asks' },
  TP_REQUEST_INVALID: {
    status: 400,
    title: "The request does not match the route's API description (`errors` lists each: in, pointer, message)",
  },
  TP_OPERATION_NOT_FOUND: { status: 404, title: "No operation of the route's API description has this path" },
  TP_SEND_TIMEOUT: { status: 408, title: 'The client did not read the response in time' },
  TP_CONNECTION_LIMIT: { status: 503, title: 'Too many open connections' },
  TP_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  TP_H2_PROTOCOL: { status: 400, title: 'Malformed HTTP/2 frames or header fields (GOAWAY PROTOCOL_ERROR)' },
  TP_H2_FLOOD: { status: 429, title: 'HTTP/2 frames sent faster than the limits allow (GOAWAY ENHANCE_YOUR_CALM)' },
  TP_URI_TOO_LONG: { status: 414, title: 'Request target too long' },
  TP_GRPC_WEB_UNSUPPORTED: {
    status: 415,
    title: 'This route speaks gRPC-Web: POST with Content-Type application/grpc-web or application/grpc-web-text',
  },
  TP_UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream service could not be reached' },
  TP_UPSTREAM_RESET: { status: 502, title: 'The upstream service closed the connection' },
  TP_UPSTREAM_TLS: {
    status: 502,
    title: "The upstream service's TLS certificate could not be verified or the handshake failed",
  },
  TP_UPSTREAM_BAD_RESPONSE: { status: 502, title: 'The upstream service sent an invalid response' },
  TP_UPSTREAM_BAD_BODY: {
    status: 502,
    title: 'The upstream response body could not be parsed for the transform the route asks',
  },
  TP_UPSTREAM_BODY_TOO_LARGE: {
    status: 502,
    title: "The upstream response body to transform is larger than the route's maxBodySize",
  },
  TP_UPSTREAM_CONTRACT: {
    status: 502,
    title: "The upstream response does not match the route's API description (the errors are logged)",
  },
  TP_SOAP_BAD_REQUEST: { status: 400, title: 'The request body is not a JSON object the soap plugin can wrap' },
  TP_SOAP_BAD_RESPONSE: { status: 502, title: 'The upstream answered something that is not a SOAP envelope' },
  TP_SOAP_FAULT: { status: 502, title: 'The SOAP service answered with a Fault' },
  TP_UPSTREAM_TRUNCATED: {
    status: 502,
    title: 'The upstream response ended before its body was complete (logged; the client connection is cut)',
  },
  TP_UPSTREAM_OVERLOADED: { status: 503, title: 'The upstream service has too many requests in progress and waiting' },
  TP_UPSTREAM_TIMEOUT: { status: 504, title: 'The upstream service did not answer in time' },
  TP_NOT_ACCEPTABLE: { status: 406, title: 'This route cannot answer in a type the request accepts' },
  TP_UPGRADE_REQUIRED: { status: 426, title: 'This route speaks WebSocket: the request must ask to upgrade' },
  TP_NO_HEALTHY_TARGET: { status: 503, title: 'No upstream target is available' },
  TP_CIRCUIT_OPEN: {
    status: 503,
    title: 'The upstream service is failing; requests are paused (circuit breaker open)',
  },
  TP_AGGREGATE_CALL_FAILED: {
    status: 502,
    title: 'A call the aggregate needs failed (its name is in `call`, the reason in `cause` and `detail`)',
  },
  TP_AGGREGATE_CALL_TIMEOUT: {
    status: 504,
    title: 'A call the aggregate needs did not answer in time (`call` names it)',
  },
  TP_SHUTTING_DOWN: { status: 503, title: 'The gateway is shutting down' },
  TP_GRPC_STATUS: {
    status: 502,
    title: 'The gRPC service answered with an error status (the HTTP status follows the gRPC code)',
  },
  TP_GRPC_BAD_REQUEST: { status: 400, title: "The request does not fit the gRPC method's request message" },
  TP_INTERNAL: { status: 500, title: 'Internal gateway error' },
  // The admin listener (admin.*)
  TP_ADMIN_UNAUTHORIZED: { status: 401, title: 'The admin API needs a valid Bearer token' },
  TP_ADMIN_NOT_FOUND: { status: 404, title: 'No admin endpoint, upstream or target by this name' },
  TP_ADMIN_NOT_READY: { status: 503, title: 'The gateway is starting or draining' },
  TP_ADMIN_UNSUPPORTED: { status: 501, title: 'This admin call is not available for this gateway' },
  TP_EXPLAIN_INVALID: {
    status: 400,
    title: 'The request to explain cannot be read (its method, URL, a header, or the listener named)',
  },
  // Configuration (printed with file, line, column and key path)
  TP_CONFIG_NOT_FOUND: { status: 0, title: 'Config file not found or unreadable' },
  TP_CONFIG_SYNTAX: { status: 0, title: 'Config file is not valid YAML or JSON' },
  TP_CONFIG_UNKNOWN_KEY: { status: 0, title: 'Unknown key' },
  TP_CONFIG_INVALID: { status: 0, title: 'Invalid value' },
  TP_CONFIG_ENV_UNSET: { status: 0, title: 'Environment variable is not set' },
  TP_CONFIG_UNKNOWN_PLUGIN: { status: 0, title: 'Unknown plugin' },
  TP_CONFIG_BAD_REFERENCE: { status: 0, title: 'Reference to something that is not defined' },
  TP_CONFIG_DUPLICATE: { status: 0, title: 'Duplicate name' },
  // Warnings of `turnpike validate --strict` (a valid config that is almost surely a mistake)
  TP_CONFIG_SHADOWED_ROUTE: { status: 0, title: 'A route can never match: an earlier route takes its requests' },
  TP_CONFIG_DUPLICATE_MATCH: { status: 0, title: 'Two routes have the same match' },
  TP_CONFIG_UNUSED: { status: 0, title: 'An upstream or consumer nothing uses' },
  TP_CONFIG_URL_CREDENTIALS: { status: 0, title: 'A URL carries a password written in the config' },
  TP_TLS_CONFIG: { status: 0, title: 'A TLS certificate, key or CA file cannot be used' },
  TP_CONFIG_FILE: { status: 0, title: 'A file the config names cannot be read, parsed or written' },
  TP_LISTEN_FAILED: { status: 0, title: 'A listener could not bind its address' },
  // Logged while running
  TP_DISCOVERY_FAILED: { status: 0, title: "A discovery source failed; the upstream's last targets stay in use" },
  TP_ETCD_FAILED: { status: 0, title: 'etcd could not be reached, or refused a call' },
  TP_DISCOVERY_REFUSED: {
    status: 0,
    title: "A discovered address is outside the discover block's allowNetworks or inside its denyNetworks",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code from the catalogue. */
export class TurnpikeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? ERRORS[code].title, options);
    this.code = code;
    this.name = 'TurnpikeError';
  }
}
