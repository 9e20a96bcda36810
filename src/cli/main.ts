#!/usr/bin/env node
// The bin: checks the Node version before anything loads (undici 8 and the rest need Node 24), then runs the CLI.
// No V8 flags on the shebang: a Node that does not know one dies with `node: bad option` before this check runs;
// relaunchWithNodeFlags adds them (src/runtime/node-flags.ts). Only syntax every Node since 14 parses.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `turnpike needs Node.js 24 or newer (this is ${process.version}). Install Node 24, or inside the project run ` +
      `it through npm, which uses the pinned Node 24 (npx turnpike ..., npm start).\n`,
  );
  process.exit(1);
}
const { relaunchWithNodeFlags } = await import('../runtime/node-flags.ts');
relaunchWithNodeFlags();
await import('./commands.ts');
