// gRPC status codes as HTTP statuses for JSON clients (Envoy's grpc-json transcoder and grpc-gateway use this
// table): NOT_FOUND 404, INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429,
// UNAVAILABLE 503, DEADLINE_EXCEEDED 504, and the rest as those projects map them.
const TABLE: readonly (readonly [name: string, http: number])[] = [
  ['OK', 200],
  ['CANCELLED', 499],
  ['UNKNOWN', 500],
  ['INVALID_ARGUMENT', 400],
  ['DEADLINE_EXCEEDED', 504],
  ['NOT_FOUND', 404],
  ['ALREADY_EXISTS', 409],
  ['PERMISSION_DENIED', 403],
  ['RESOURCE_EXHAUSTED', 429],
  ['FAILED_PRECONDITION', 400],
  ['ABORTED', 409],
  ['OUT_OF_RANGE', 400],
  ['UNIMPLEMENTED', 501],
  ['INTERNAL', 500],
  ['UNAVAILABLE', 503],
  ['DATA_LOSS', 500],
  ['UNAUTHENTICATED', 401],
];

export function grpcStatusName(code: number): string {
  return TABLE[code]?.[0] ?? 'UNKNOWN';
}

export function httpStatusOfGrpc(code: number): number {
  return TABLE[code]?.[1] ?? 500;
}

/** Statuses that say the target (not the request) failed: they count against it for health and the breaker. */
export function targetFailed(code: number): boolean {
  return code === 14 || code === 4 || code === 13 || code === 2 || code === 15;
}
