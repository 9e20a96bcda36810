// What the plugins' `explain` hooks share: a reply as an explanation, and the verdict of an authentication plugin,
// found by running its request hook on the explain context (its only effects are on that context: the identity,
// a challenge, credentials hidden from the upstream, an identity provider asked).
import type { Reply, RequestContext } from '../request-context.ts';
import type { PluginExplanation, RequestHook } from './types.ts';

/** The `detail` of a problem+json reply, or ''. */
function detailOf(reply: Reply): string {
  if (reply.code === undefined || reply.body === undefined) return '';
  try {
    const detail = (JSON.parse(String(reply.body)) as { detail?: unknown }).detail;
    return typeof detail === 'string' ? detail : '';
  } catch {
    return '';
  }
}

/** The plugin would answer the request itself with `reply`. */
export function answers(reply: Reply, summary: string, details?: Record<string, unknown>): PluginExplanation {
  const detail = detailOf(reply);
  return {
    decision: 'answer',
    status: reply.status,
    ...(reply.code !== undefined ? { code: reply.code } : {}),
    summary: `${summary}: ${reply.status}${reply.code !== undefined ? ` ${reply.code}` : ''}${detail ? ` (${detail})` : ''}`,
    ...(details !== undefined ? { details } : {}),
  };
}

export function continues(summary: string, details?: Record<string, unknown>): PluginExplanation {
  return { decision: 'continue', summary, ...(details !== undefined ? { details } : {}) };
}

/**
 * Runs a request hook whose only effects are on the context (ip-filter, allow, cors, rewrite, headers) and says
 * what it decided; `describe` words the decision to go on.
 */
export async function explainByRunning(
  request: RequestHook | undefined,
  ctx: RequestContext,
  refused: string,
  describe: () => PluginExplanation,
): Promise<PluginExplanation> {
  const reply = request === undefined ? undefined : await request(ctx);
  return reply ? answers(reply, refused) : describe();
}

/**
 * An authentication plugin's verdict: runs its request hook (it verifies the credential: a key looked up, a JWT's
 * signature checked against the configured keys or the JWKS, a token introspected) and reports who it accepted, or
 * the challenge it would leave when it refused.
 */
export async function explainAuthentication(
  request: RequestHook,
  ctx: RequestContext,
  /** Why a refusal whose challenge gives no `error_description` happened (no credential, an unknown key). */
  refusedBecause: () => string = () => 'no credential',
): Promise<PluginExplanation> {
  if (ctx.identity !== null)
    return continues(`skipped: already authenticated by ${ctx.identity.method}`, { skipped: true });
  const challenges = ctx.authChallenges?.length ?? 0;
  const reply = await request(ctx);
  if (reply) return answers(reply, 'cannot check the credential');
  const identity = ctx.identity as RequestContext['identity'];
  if (identity !== null) {
    const who = identity.consumer !== null ? `consumer "${identity.consumer.name}"` : `subject "${identity.subject}"`;
    return continues(`authenticated: ${who}`, {
      authenticated: true,
      consumer: identity.consumer?.name ?? null,
      groups: identity.consumer?.groups ?? [],
      subject: identity.subject,
      scopes: [...identity.scopes],
    });
  }
  const challenge = ctx.authChallenges?.[challenges] ?? '';
  const why = /error_description="([^"]*)"/.exec(challenge)?.[1] ?? refusedBecause();
  return { decision: 'refused', summary: `not authenticated: ${why}`, details: { authenticated: false, challenge } };
}
