// The dashboard's files, served by the admin listener with no build step: the page's own files (index.html,
// app.js, style.css) from src/admin/dashboard/, and preact, preact/hooks and htm straight from node_modules
// (their ESM builds, found with import.meta.resolve), named by a hash of their content so the browser may keep
// them for a year; an import map in the page maps the bare names to them. Nothing is fetched from a CDN.
//
// Where the files are: this module runs as src/admin/dashboard-assets.ts (tests, type stripping) or as
// dist/admin/dashboard-assets.js (npm start; tsc does not copy .html/.js). Both look for ./dashboard/ beside the
// module first, then for the package's src/admin/dashboard/ (two levels up from dist/admin/), which is published.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly cacheControl: string;
}

export interface DashboardAssets {
  /** The page, with its import map filled in. */
  readonly page: Asset;
  /** The Content-Security-Policy of the page (scripts from here only, plus the import map by its hash). */
  readonly csp: string;
  /** The page's own files by name (app.js, style.css). */
  readonly own: ReadonlyMap<string, Asset>;
  /** preact, hooks and htm by their hashed file name. */
  readonly vendor: ReadonlyMap<string, Asset>;
}

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const IMPORTS = { preact: 'preact', 'preact/hooks': 'preact/hooks', htm: 'htm' } as const;
export const VENDOR_PREFIX = '/dashboard/vendor/';
const IMMUTABLE = 'public, max-age=31536000, immutable';
// The page's own files change with the package version; revalidate rather than serve a stale app.
const REVALIDATE = 'no-cache';

export function dashboardDir(): string {
  const candidates = [new URL('./dashboard/', import.meta.url), new URL('../../src/admin/dashboard/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error(`the dashboard files are missing (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`);
}

function typeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return TYPES[name.slice(dot)] ?? 'application/octet-stream';
}

function load(): DashboardAssets {
  const vendor = new Map<string, Asset>();
  const imports: Record<string, string> = {};
  for (const [bare, specifier] of Object.entries(IMPORTS)) {
    const body = readFileSync(fileURLToPath(import.meta.resolve(specifier)));
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    const name = `${bare.replace('/', '-')}.${hash}.mjs`;
    vendor.set(name, { body, contentType: TYPES['.mjs']!, cacheControl: IMMUTABLE });
    imports[bare] = `${VENDOR_PREFIX}${name}`;
  }
  const dir = dashboardDir();
  const own = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (name === 'index.html' || !(name.endsWith('.js') || name.endsWith('.css') || name.endsWith('.svg'))) continue;
    own.set(name, { body: readFileSync(`${dir}${name}`), contentType: typeOf(name), cacheControl: REVALIDATE });
  }
  const importMap = JSON.stringify({ imports });
  // The whole element is rewritten, so the CSP hash below matches its text whatever the file's formatting.
  const html = readFileSync(`${dir}index.html`, 'utf8').replace(
    /<script type="importmap">[\s\S]*?<\/script>/,
    () => `<script type="importmap">${importMap}</script>`,
  );
  const mapHash = createHash('sha256').update(importMap).digest('base64');
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${mapHash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return {
    page: { body: Buffer.from(html), contentType: TYPES['.html']!, cacheControl: REVALIDATE },
    csp,
    own,
    vendor,
  };
}

let loaded: DashboardAssets | null = null;

/** The files, read once (on the first dashboard request). */
export function dashboardAssets(): DashboardAssets {
  loaded ??= load();
  return loaded;
}
