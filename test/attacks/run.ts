// `npm run attacks [-- --full] [files...]`: the attack and fault catalogue (../shared/reliability-cases.md) alone;
// --full runs floods, slow clients and big bodies at their catalogue sizes instead of the bounded ones.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const full = args.includes('--full');
const files = args.filter((a) => a !== '--full');
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', ...(files.length > 0 ? files : ['test/attacks/**/*.test.ts'])],
  { stdio: 'inherit', env: { ...process.env, TURNPIKE_ATTACKS: full ? 'full' : 'bounded' } },
);
process.exit(result.status ?? 1);
