// The gateway's own log (start, reload, errors): JSON lines on stderr, apart from the access log.
import pino, { type Logger } from 'pino';

export function createAppLog(level = 'info'): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
}
