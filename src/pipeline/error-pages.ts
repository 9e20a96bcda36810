// `errorPages`: the gateway's own errors as HTML pages for clients that prefer text/html (a browser), read once
// at load; API clients keep problem+json. Applied in sendReply, the one place gateway errors are written.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ErrorPagesConfig } from '../config/fallback-schema.ts';
import { prefersHtml } from '../http/accept.ts';

export class ErrorPages {
  /** Page bodies by exact status (`404`) or class (`5xx`). */
  private readonly html: ReadonlyMap<string, Buffer>;

  constructor(html: ReadonlyMap<string, Buffer>) {
    this.html = html;
  }

  /** The HTML page for `status`, when there is one and the client prefers HTML; else undefined. */
  pageFor(status: number, accept: string | undefined): Buffer | undefined {
    const page = this.html.get(String(status)) ?? this.html.get(`${Math.floor(status / 100)}xx`);
    return page !== undefined && prefersHtml(accept) ? page : undefined;
  }
}

/** Reads the configured pages (relative to the config folder); `validate` reported missing files already. */
export function loadErrorPages(config: ErrorPagesConfig | undefined, configDir: string): ErrorPages | null {
  const entries = Object.entries(config?.html ?? {});
  if (entries.length === 0) return null;
  return new ErrorPages(new Map(entries.map(([key, file]) => [key, readFileSync(resolve(configDir, file))])));
}

/** Problems with the pages' files, as key paths under errorPages (config-checks.ts places them at their lines). */
export function errorPageProblems(raw: unknown, configDir: string): { path: string[]; message: string }[] {
  if (raw === null || typeof raw !== 'object') return [];
  const html = (raw as { html?: unknown }).html;
  if (html === null || typeof html !== 'object') return [];
  const problems: { path: string[]; message: string }[] = [];
  for (const [key, file] of Object.entries(html)) {
    if (typeof file !== 'string' || file === '') continue;
    const full = resolve(configDir, file);
    try {
      readFileSync(full);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message;
      problems.push({ path: ['html', key], message: `${file === full ? file : `${file} (${full})`}: ${why}` });
    }
  }
  return problems;
}
