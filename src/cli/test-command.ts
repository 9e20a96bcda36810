// `turnpike test --config FILE CASES.yaml`: declarative route tests against the config's real pipeline.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import pino from 'pino';
import { ConfigError, formatProblem } from '../config/loader.ts';

export function registerTestCommand(program: Command): void {
  program
    .command('test')
    .description(
      'run route test cases against a config (upstreams replaced by stubs); exits 0 when all pass, 1 with a diff per failed case',
    )
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .argument('<cases>', 'cases file (YAML)')
    .option('--junit <file>', 'also write the results as JUnit XML')
    .action(async (cases: string, opts: { config: string; junit?: string }) => {
      const { runRouteTests } = await import('../route-tests/runner.ts');
      const { junitReport, textReport } = await import('../route-tests/report.ts');
      // The gateway's own errors (a plugin that throws) still reach stderr; its routine lines would be noise.
      const log = pino({ level: 'error' }, pino.destination({ dest: 2, sync: true }));
      let run;
      try {
        run = await runRouteTests(opts.config, cases, log);
      } catch (err) {
        if (err instanceof ConfigError)
          for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
        else {
          const e = err as { code?: string; message?: string };
          process.stderr.write(`error: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}\n`);
        }
        process.exit(1);
      }
      process.stdout.write(textReport(run));
      if (opts.junit !== undefined) writeFileSync(opts.junit, junitReport(run));
      // exit, not exitCode: a keep-alive socket a plugin opened (a JWKS fetch) must not hold the process.
      process.exit(run.results.some((r) => r.failures.length > 0) ? 1 : 0);
    });
}
