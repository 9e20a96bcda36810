// CPU and memory of a process tree, read from /proc (Linux only; other systems get undefined).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The pid and all its descendants, in case the gateway ever runs worker processes. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // the process may have exited in between
    }
  }
  return out;
}

/** CPU seconds (user + system) consumed so far by the process tree. */
export function cpuSeconds(pid: number): number | undefined {
  let ticks = 0;
  let seen = false;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name, which may itself contain spaces or parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
      seen = true;
    } catch {
      // gone
    }
  }
  return seen ? ticks / ticksPerSecond() : undefined;
}

/** Peak resident memory (VmHWM) in bytes, summed over the process tree. */
export function peakRssBytes(pid: number): number | undefined {
  let total = 0;
  let seen = false;
  for (const p of processTree(pid)) {
    try {
      const m = readFileSync(`/proc/${p}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
      if (m) {
        total += Number(m[1]) * 1024;
        seen = true;
      }
    } catch {
      // gone
    }
  }
  return seen ? total : undefined;
}

/**
 * Resets VmHWM to the current RSS (Linux ≥ 4.0, same user), so the next reading is the peak of one
 * measurement window rather than of the whole run. Returns false when the kernel refuses.
 */
export function resetPeakRss(pid: number): boolean {
  let ok = true;
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** Starts measuring CPU% of a process tree; the returned function ends the window and gives the percentage. */
export function cpuWindow(pid: number): () => number | undefined {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  return () => {
    const cpu1 = cpuSeconds(pid);
    const wall = (performance.now() - t0) / 1000;
    if (cpu0 === undefined || cpu1 === undefined || wall <= 0) return undefined;
    return ((cpu1 - cpu0) / wall) * 100;
  };
}

/** CPU seconds the machine's processes have used so far, all cores, from /proc/stat: user, nice and system, plus
 *  steal (a neighbour VM's). Not irq and softirq: the loopback traffic of the bench itself is counted there, and
 *  no process is charged for it. */
function machineBusySeconds(): number | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8')
      .match(/^cpu\s+(.*)$/m)![1]!
      .split(/\s+/)
      .map(Number);
    const [user, nice, system, , , , , steal] = cpu; // guest time is already in user
    return (user! + nice! + system! + (steal ?? 0)) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU seconds of the bench's own process tree, with the children it has reaped (each wrk run) counted in. */
function benchSeconds(): number | undefined {
  const tree = cpuSeconds(process.pid);
  try {
    const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return tree === undefined ? undefined : tree + (Number(fields[13]) + Number(fields[14])) / ticksPerSecond(); // cutime, cstime
  } catch {
    return undefined;
  }
}

/**
 * Starts measuring the CPU used by processes outside the bench (other users' builds and tests) while a window
 * runs; the returned function gives it as a percentage (100 = one core). On a shared machine that is the CPU the
 * measured processes did not get, so a run with much of it is one to repeat.
 */
export function foreignCpuWindow(): () => number | undefined {
  const busy0 = machineBusySeconds();
  const own0 = benchSeconds();
  const t0 = performance.now();
  return () => {
    const busy1 = machineBusySeconds();
    const own1 = benchSeconds();
    const wall = (performance.now() - t0) / 1000;
    if (busy0 === undefined || busy1 === undefined || own0 === undefined || own1 === undefined || wall <= 0)
      return undefined;
    return Math.max(0, (busy1 - busy0 - (own1 - own0)) / wall) * 100;
  };
}
