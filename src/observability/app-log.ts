// The gateway's own log (start, reload, errors): JSON lines on stderr, apart from the access log. Levels are
// names (`"level":"info"`), as in the access log, so one filter reads both.
import pino, { type Logger } from 'pino';

export function createAppLog(level = 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}
