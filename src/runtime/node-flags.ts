// V8 flags every Turnpike process runs with: the bin's shebang and `npm start` carry the same list, and
// worker processes, the test helpers and the bench pass it when they start a gateway.
// Node 24's V8 sizes the young generation from the machine's memory (64 MB semi-spaces on a 24 GiB machine);
// a proxy's garbage (dead socket buffers, per-request objects) then holds ~130 MB of RSS between scavenges.
// Measured here on 2026-11-22 at equal throughput: peak RSS under 100 B load 241 MB → 160-175 MB, and the
// growth while streaming 1 GiB each way ~100 MB → ~50 MB (the scavenger cap is what helps streaming).
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--scavenger-max-new-space-capacity-mb=8'];
