// Programmatic entry point: start a gateway from a config file or text (used by the CLI, the demo and tests).
export { ConfigError, formatProblem } from './config/loader.ts';
export type { Config } from './config/schema.ts';
export { Runtime } from './runtime/runtime.ts';
export { systemClock, type Clock } from './clock.ts';
export { parseConfig, startGateway, type Gateway, type StartOptions } from './runtime/gateway.ts';
