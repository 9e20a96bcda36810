// Every terminal Turnpike knows, by the route key that selects it. Adding a terminal = one file here + one line
// below + its config shape in config/schema.ts (ROUTE_TERMINALS), which builds the route's "one of" rule.
import { ROUTE_TERMINALS } from '../config/schema.ts';
import { aggregateTerminal } from './aggregate.ts';
import { bridgeTerminal } from './bridge.ts';
import { grpcTranscodeTerminal } from './grpc-transcode.ts';
import { redirectTerminal } from './redirect.ts';
import { respondTerminal } from './respond.ts';
import { splitTerminal } from './split.ts';
import type { TerminalKind } from './terminal.ts';
import { upstreamTerminal } from './upstream.ts';

export const TERMINALS: ReadonlyMap<string, TerminalKind<any>> = new Map<string, TerminalKind<any>>(
  [
    upstreamTerminal,
    respondTerminal,
    redirectTerminal,
    aggregateTerminal,
    bridgeTerminal,
    grpcTranscodeTerminal,
    splitTerminal,
  ].map((t) => [t.key, t as TerminalKind<any>]),
);

for (const key of Object.keys(ROUTE_TERMINALS)) {
  if (!TERMINALS.has(key)) throw new Error(`route key "${key}" has a config shape but no terminal in src/terminals`);
}
for (const key of TERMINALS.keys()) {
  if (!(key in ROUTE_TERMINALS))
    throw new Error(`terminal "${key}" has no config shape in ROUTE_TERMINALS (config/schema.ts)`);
}
