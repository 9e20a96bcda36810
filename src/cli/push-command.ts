// `turnpike push FILE --to etcd://HOST:PORT/KEY` (or redis://HOST:PORT/DB?key=KEY): checks the file exactly as
// `turnpike validate` does and, only when it is valid, writes its text to the store key that instances started
// with `--config <that URL>` watch. The text is written as is: `${VAR}`s expand on each instance.
import type { Command } from 'commander';
import { readConfigFile } from '../config/loader.ts';
import { configTextHash } from '../observability/metrics-process.ts';
import { isStoreLocation, openConfigSource } from '../runtime/config-source/source.ts';
import { printText, validateOne } from './validate-command.ts';

interface PushOptions {
  readonly to: string;
  readonly files: boolean;
  readonly strict: boolean;
}

export function registerPush(program: Command): void {
  program
    .command('push')
    .description(
      'validate a config file as validate does and publish it to etcd or Redis; exits 1 when it is invalid (nothing written), 2 when the store cannot be written',
    )
    .argument('<file>', 'the config file (YAML or JSON)')
    .requiredOption('--to <url>', 'etcd://HOST:PORT/KEY or redis://HOST:PORT/DB?key=KEY')
    .option('--no-files', 'do not open the files the config names (certificates, keys) while validating')
    .option('--strict', 'also refuse on the warnings of validate --strict')
    .action(async (file: string, opts: PushOptions, cmd: Command) => {
      if (!isStoreLocation(opts.to))
        cmd.error('error: --to must be etcd://HOST:PORT/KEY or redis://HOST:PORT/DB?key=KEY');
      const result = validateOne(file, { config: [], files: opts.files, format: 'text', strict: opts.strict });
      if (!result.valid) {
        printText(result);
        process.stderr.write(`not pushed: ${file} is not valid\n`);
        process.exitCode = 1;
        return;
      }
      let source;
      try {
        source = openConfigSource(opts.to);
        const text = readConfigFile(file);
        await source.write!(text);
        process.stdout.write(`pushed ${file} to ${source.name} (hash ${configTextHash(text)})\n`);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        process.stderr.write(`error: cannot push to ${opts.to}: ${e.message ?? String(err)}\n`);
        process.exitCode = 2;
      } finally {
        source?.close();
      }
    });
}
