// allow: authorization on the identity an authentication plugin set. Every condition given must hold: the
// consumer is in at least one of `groups` (or is one of `consumers`), the token has every one of `scopes`, and
// each of `claims` has exactly that value. Otherwise 403.
import { z } from 'zod';
import type { CheckProblem } from '../config/problems.ts';
import { problemReply } from '../pipeline/problem.ts';
import { continues, explainByRunning } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

const claimValue = z.union([z.string(), z.number(), z.boolean()]).meta({ examples: ['admin'] });

const schema = z
  .strictObject({
    groups: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'the consumer must be in one of these groups', examples: [['partners']] }),
    consumers: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'the consumer must be one of these', examples: [['mobile']] }),
    scopes: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'the token must carry every one of these scopes', examples: [['orders:read']] }),
    claims: z
      .record(z.string(), claimValue)
      .optional()
      .meta({
        description: 'token claims that must have these values',
        examples: [{ role: 'admin' }],
      }),
  })
  .refine((c) => c.groups || c.consumers || c.scopes || c.claims, {
    message: 'allow needs at least one of groups, consumers, scopes, claims',
  });

export const allowPlugin = definePlugin({
  name: 'allow',
  phase: 'authorize',
  description: 'Allows only identities with the given groups, consumers, scopes or claim values (403 otherwise)',
  schema,
  check(config, env) {
    const problems: CheckProblem[] = [];
    config.consumers?.forEach((name, i) => {
      if (!env.consumerNames.has(name)) {
        problems.push({
          path: ['consumers', i],
          code: 'TP_CONFIG_BAD_REFERENCE',
          message: `names consumer "${name}", which is not defined under consumers`,
        });
      }
    });
    config.groups?.forEach((group, i) => {
      if (!env.consumerGroups.has(group)) {
        problems.push({
          path: ['groups', i],
          code: 'TP_CONFIG_BAD_REFERENCE',
          message: `no consumer is in group "${group}", so it can never allow anyone`,
        });
      }
    });
    return problems;
  },
  create(config) {
    const groups = config.groups ? new Set(config.groups) : null;
    const consumers = config.consumers ? new Set(config.consumers) : null;
    const scopes = config.scopes ?? null;
    const claims = config.claims ? Object.entries(config.claims) : null;
    const request: RequestHook = (ctx) => {
      const identity = ctx.identity;
      if (identity === null) return problemReply('TP_FORBIDDEN', 'no authenticated identity', ctx.requestId);
      const consumer = identity.consumer;
      if (groups !== null || consumers !== null) {
        const inGroup = groups !== null && consumer !== null && consumer.groups.some((g) => groups.has(g));
        const named = consumers !== null && consumer !== null && consumers.has(consumer.name);
        if (!inGroup && !named) return problemReply('TP_FORBIDDEN', undefined, ctx.requestId);
      }
      if (scopes !== null) {
        for (const s of scopes)
          if (!identity.scopes.has(s)) return problemReply('TP_FORBIDDEN', `missing scope ${s}`, ctx.requestId);
      }
      if (claims !== null) {
        for (const [name, value] of claims) {
          if (identity.claims[name] !== value) return problemReply('TP_FORBIDDEN', undefined, ctx.requestId);
        }
      }
      return undefined;
    };
    const who = (ctx: Parameters<RequestHook>[0]) =>
      ctx.identity === null ? 'no identity' : (ctx.identity.consumer?.name ?? ctx.identity.subject);
    return {
      request,
      explain: (ctx) => explainByRunning(request, ctx, `${who(ctx)} refused`, () => continues(`${who(ctx)} allowed`)),
    };
  },
});
