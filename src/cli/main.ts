#!/usr/bin/env -S node --max-semi-space-size=8 --scavenger-max-new-space-capacity-mb=8
// Flags on the shebang: see src/runtime/node-flags.ts (keep the two in step).
// The bin: checks the Node version before anything loads (undici 8 and the rest need Node 24), then runs the CLI.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `turnpike needs Node.js 24 or newer (this is ${process.version}). Run it through npm, which uses the pinned ` +
      `Node 24 (npx turnpike ..., npm start), or install Node 24.\n`,
  );
  process.exit(1);
}
await import('./commands.ts');
