// V8 flags every Turnpike process runs with: the bin adds them itself (relaunchWithNodeFlags), `npm start` passes
// them, and worker processes, the test helpers and the bench pass them when they start a gateway.
// Node 24's V8 sizes the young generation from the machine's memory (64 MB semi-spaces on a 24 GiB machine);
// a proxy's garbage (dead socket buffers, per-request objects) then holds ~130 MB of RSS between scavenges.
// Measured here on 2026-11-22 at equal throughput: peak RSS under 100 B load 241 MB → 160-175 MB, and the
// growth while streaming 1 GiB each way ~100 MB → ~50 MB (the scavenger cap is what helps streaming).
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--scavenger-max-new-space-capacity-mb=8'];

const flagName = (arg: string): string => arg.split('=')[0]!;

/** The NODE_FLAGS this process was started without (a flag given with another value counts as given). */
export function missingNodeFlags(execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}

/**
 * Runs this script again in the same process with the flags it lacks: the heap sizes are fixed when V8 starts
 * (v8.setFlagsFromString comes too late for them), and they cannot sit on the bin's shebang, where a Node older
 * than 24 dies with `bad option` before the bin can say what it needs. process.execve keeps the pid, so systemd's
 * MainPID, a container's PID and signals still reach the gateway. Where there is no execve (Windows), or when a
 * parent's IPC channel is open (Node has already taken NODE_CHANNEL_FD out of the environment, so the new image
 * would lose it), it runs on without them. Called before anything is read from stdin or written anywhere.
 */
export function relaunchWithNodeFlags(): void {
  const missing = missingNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length === 0 || typeof process.execve !== 'function' || process.channel !== undefined) return;
  const script = process.argv[1]!;
  process.execve(
    process.execPath,
    [process.execPath, ...missing, ...process.execArgv, script, ...process.argv.slice(2)],
    process.env,
  );
}
