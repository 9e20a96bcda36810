// Runs an admin operation where the gateway's state is: in this process (a single process), or in every worker
// of a multi-worker instance (the primary asks them over IPC and merges their answers).
import { TurnpikeError } from '../errors.ts';
import { runAdminOp, type AdminOp } from './admin-ops.ts';
import type { AdminContext } from './endpoint.ts';
import { mergeAnswers } from './merge-ops.ts';

/** Runs a read-only `op` where the gateway's state is: in this process, or in one of the workers. */
export async function runOpOnOne(admin: AdminContext, op: AdminOp): Promise<unknown> {
  const runtime = admin.runtime();
  if (runtime !== null) return runAdminOp(runtime, admin.log, op);
  if (admin.workers !== null) return admin.workers.one(op);
  throw new TurnpikeError('TP_ADMIN_NOT_READY', 'the gateway is still starting');
}

export async function runOp(admin: AdminContext, op: AdminOp): Promise<unknown> {
  const runtime = admin.runtime();
  if (runtime !== null) return runAdminOp(runtime, admin.log, op);
  if (admin.workers !== null) return mergeAnswers(op, await admin.workers.all(op));
  throw new TurnpikeError('TP_ADMIN_NOT_READY', 'the gateway is still starting');
}
