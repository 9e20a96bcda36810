// turnpike explain --config FILE METHOD URL [-H 'name: value']... [--json] [--listener NAME]: what the gateway would
// do with one request (src/explain/). The engine is imported when the command runs, so other commands never load it.
import { Command, InvalidArgumentError } from 'commander';
import { reportConfigError } from './report-error.ts';

interface ExplainOptions {
  readonly config: string;
  readonly header: [string, string][];
  readonly json?: boolean;
  readonly listener?: string;
  readonly clientIp?: string;
}

function collectHeader(value: string, previous: [string, string][]): [string, string][] {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new InvalidArgumentError(`expected "name: value", got ${JSON.stringify(value)}`);
  return [...previous, [value.slice(0, colon).trim(), value.slice(colon + 1).trim()]];
}

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .description(
      'say what the gateway would do with one request: listener, route (and why others do not match), each ' +
        "plugin's decision, terminal, upstream and target; sends nothing upstream, consumes no rate limit or cache entry",
    )
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .argument('<method>', 'request method (GET, POST, ...)')
    .argument('<url>', 'absolute URL: its scheme and port choose the listener, its host and path the route')
    .option('-H, --header <header>', 'a request header, "name: value" (repeatable)', collectHeader, [])
    .option('--listener <name>', 'the listener to explain for, instead of the one the URL selects')
    .option('--client-ip <ip>', 'the address the request comes from', '127.0.0.1')
    .option('--json', 'print the explanation as JSON')
    .action(async (method: string, url: string, opts: ExplainOptions) => {
      try {
        const { explainConfigFile } = await import('../explain/offline.ts');
        const headers: Record<string, string[]> = {};
        for (const [name, value] of opts.header) (headers[name] ??= []).push(value);
        const explanation = await explainConfigFile(
          opts.config,
          {
            method,
            url,
            headers,
            ...(opts.listener !== undefined ? { listener: opts.listener } : {}),
            ...(opts.clientIp !== undefined ? { clientIp: opts.clientIp } : {}),
          },
          (message) => process.stderr.write(`warning: ${message}\n`),
        );
        const { formatExplanation } = await import('../explain/format.ts');
        const text = opts.json ? JSON.stringify(explanation, null, 2) + '\n' : formatExplanation(explanation);
        // Exit once written: a JWKS or Redis client must not keep the command alive.
        process.stdout.write(text, () => process.exit(0));
      } catch (err) {
        reportConfigError(err);
      }
    });
}
