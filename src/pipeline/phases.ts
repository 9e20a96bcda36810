// The fixed phases plugins run in; the chain orders hooks by them (see chain.ts for the response side).

/** Request phases, in the fixed order they run. The terminal (forward, respond, redirect) runs after `cache`. */
export const REQUEST_PHASES = ['access', 'authenticate', 'authorize', 'limit', 'transform-request', 'cache'] as const;
/**
 * Response phases, in order, before the response hooks of the request-phase plugins (which run in reverse
 * request order, as Envoy's encoders do). Their hooks see every response head, local replies included; only
 * heads of bodies a terminal produced carry a `body` to add stages to.
 */
export const RESPONSE_PHASES = ['transform-response', 'compress'] as const;
/** `log` runs once the exchange is over. */
export const PHASES = [...REQUEST_PHASES, ...RESPONSE_PHASES, 'log'] as const;
export type Phase = (typeof PHASES)[number];
export type RequestPhase = (typeof REQUEST_PHASES)[number];
export type ResponsePhase = (typeof RESPONSE_PHASES)[number];
