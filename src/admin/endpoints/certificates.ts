// GET /api/certificates: each certificate an https listener serves: its names, issuer and expiry.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configDirOf } from '../../runtime/open-listener.ts';
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runningGateway } from '../running.ts';

/** DNS and IP names from subjectAltName, else the subject's CN. */
function namesOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san) return san.split(', ').map((n) => n.replace(/^(DNS|IP Address):/, ''));
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
  return cn ? [cn[1]!] : [];
}

export const getCertificates = defineAdminEndpoint({
  method: 'GET',
  path: '/api/certificates',
  auth: 'token',
  summary: 'each served certificate: listener, file, names, issuer, expiry and days left',
  handle(_req, res, _params, admin) {
    const runtime = runningGateway(admin);
    const dir = configDirOf(runtime.configFile);
    const out = [];
    for (const l of runtime.current.config.listeners) {
      if (l.protocol !== 'https') continue;
      for (const c of l.tls.certificates) {
        const file = resolve(dir, c.cert);
        try {
          // A chain file: the first certificate is the one served for its names.
          const cert = new X509Certificate(readFileSync(file));
          const notAfter = new Date(cert.validTo);
          out.push({
            listener: l.name,
            file: c.cert,
            names: namesOf(cert),
            issuer: cert.issuer.replaceAll('\n', ', '),
            notBefore: new Date(cert.validFrom).toISOString(),
            notAfter: notAfter.toISOString(),
            daysLeft: Math.floor((notAfter.getTime() - Date.now()) / 86_400_000),
          });
        } catch (err) {
          out.push({ listener: l.name, file: c.cert, error: (err as Error).message });
        }
      }
    }
    sendJson(res, 200, { certificates: out });
  },
});
