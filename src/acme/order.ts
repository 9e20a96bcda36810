// One ACME order with acme-client (RFC 8555): account (made on first use, its key kept in storage), CSR, the
// configured challenge for every name, finalize, the certificate chain. How challenges are answered is the caller's.
import { execFile } from 'node:child_process';
import { Agent } from 'node:https';
import { promisify } from 'node:util';
import acme from 'acme-client';
import type { AcmeSettings } from '../config/acme-schema.ts';
import type { ChallengeAnswer } from './manager.ts';
import type { PemPair } from './placeholder.ts';

const run = promisify(execFile);

export interface OrderOptions {
  readonly settings: AcmeSettings;
  readonly directoryCa: string | undefined;
  /** The account key from storage, or `make()`'s, stored. */
  readonly accountKey: (make: () => Promise<string>) => Promise<string>;
  readonly publish: (challenge: ChallengeAnswer) => Promise<void>;
  readonly unpublish: (challenge: ChallengeAnswer) => Promise<void>;
}

// acme-client retries a failed request itself up to 5 times, 5 s more apart each time, and sets no timeout: a round
// would hang or sleep for over a minute. The manager retries whole rounds with its own backoff instead.
const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } })
  .acmeSettings;
if (settings !== undefined) {
  settings.retryMaxAttempts = 1;
  settings.retryDefaultDelay = 1;
}
acme.axios.defaults.timeout = 30_000;

// acme-client sends every request through one axios instance: a directory with its own CA (acme.ca) gets an
// agent that trusts it, chosen by origin, so two listeners with two CAs do not share trust.
const agents = new Map<string, Agent>();
let intercepting = false;

function trust(directory: string, ca: string | undefined): void {
  const origin = new URL(directory).origin;
  if (ca === undefined) {
    agents.delete(origin);
    return;
  }
  agents.set(origin, new Agent({ ca, keepAlive: false }));
  if (intercepting) return;
  intercepting = true;
  acme.axios.interceptors.request.use((config) => {
    const agent = config.url === undefined ? undefined : agents.get(originOf(config.url));
    if (agent !== undefined) config.httpsAgent = agent;
    return config;
  });
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

export async function orderCertificate(o: OrderOptions): Promise<PemPair> {
  const s = o.settings;
  trust(s.directory, o.directoryCa);
  const accountKey = await o.accountKey(async () => (await acme.crypto.createPrivateEcdsaKey('P-256')).toString());
  const client = new acme.Client({
    directoryUrl: s.directory,
    accountKey,
    ...(s.eab !== undefined ? { externalAccountBinding: { kid: s.eab.kid, hmacKey: s.eab.hmacKey } } : {}),
    // The CA validates within seconds; polling every 5 s at first (the default) only delays the certificate.
    backoffMin: 500,
    backoffMax: 10_000,
    backoffAttempts: 12,
  });
  const key = (
    s.keyType === 'rsa-2048'
      ? await acme.crypto.createPrivateRsaKey(2048)
      : await acme.crypto.createPrivateEcdsaKey('P-256')
  ).toString();
  const [, csr] = await acme.crypto.createCsr({ commonName: s.domains[0]!, altNames: [...s.domains] }, key);
  const answerOf = async (
    authz: { identifier: { value: string } },
    challenge: { type: string; token?: string },
    keyAuthorization: string,
  ): Promise<ChallengeAnswer> => {
    const domain = authz.identifier.value;
    if (challenge.type === 'http-01') return { type: 'http-01', token: challenge.token!, keyAuthorization };
    if (challenge.type === 'tls-alpn-01') {
      const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz as never, keyAuthorization);
      return { type: 'tls-alpn-01', domain, certificate: { key: alpnKey.toString(), cert: alpnCert.toString() } };
    }
    return { type: 'dns-01', domain, value: keyAuthorization };
  };
  const answers = new Map<string, ChallengeAnswer>();
  const cert = await client.auto({
    csr,
    ...(s.email !== undefined ? { email: s.email } : {}),
    termsOfServiceAgreed: true,
    challengePriority: [s.challenge],
    // acme-client would fetch the answer itself first, through public DNS and port 80: the CA's check is the one that counts.
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, challenge, keyAuthorization) => {
      const answer = await answerOf(authz, challenge, keyAuthorization);
      answers.set(`${challenge.type}|${authz.identifier.value}`, answer);
      if (answer.type === 'dns-01') await hook(s.hook!, 'set', answer.domain, answer.value);
      else await o.publish(answer);
    },
    challengeRemoveFn: async (authz, challenge) => {
      const answer = answers.get(`${challenge.type}|${authz.identifier.value}`);
      if (answer === undefined) return;
      if (answer.type === 'dns-01') await hook(s.hook!, 'unset', answer.domain, answer.value);
      else await o.unpublish(answer);
    },
  });
  return { key, cert };
}

/** dns-01: `hook set|unset DOMAIN TXTVALUE` (the record is _acme-challenge.DOMAIN); a non-zero exit fails the order. */
async function hook(program: string, action: 'set' | 'unset', domain: string, value: string): Promise<void> {
  await run(program, [action, domain, value], { timeout: 120_000 });
}
