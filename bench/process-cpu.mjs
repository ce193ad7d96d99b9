// CPU seconds of local processes, read from Linux /proc: the benches report who was busy beside each figure
// (on a small machine the load generator and the database compete with the services they measure).
import { readdir, readFile } from 'node:fs/promises';

/** utime + stime of a /proc/<pid>/stat line, in seconds. */
function statCpuSeconds(stat) {
  const fields = stat.split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Every process's stat line, by pid (a process that ends while being read is left out). */
async function allStats() {
  const stats = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.set(Number(entry), await readFile(`/proc/${entry}/stat`, 'utf8'));
    } catch {
      // the process ended
    }
  }
  return stats;
}

const parentOf = (stat) => Number(stat.split(') ')[1].split(' ')[1]);

/** CPU seconds used so far by a process (NaN once it is gone). */
export async function cpuSeconds(pid) {
  try {
    return statCpuSeconds(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** CPU seconds of the PostgreSQL processes among these stat lines (none: a remote server, NaN). */
function postgresSeconds(stats) {
  let total = 0;
  let found = 0;
  for (const stat of stats.values()) {
    if (!/^\d+ \((postgres|postmaster)\)/.test(stat)) continue;
    total += statCpuSeconds(stat);
    found += 1;
  }
  return found > 0 ? total : NaN;
}

/** CPU seconds of every local PostgreSQL process (none: a remote server, reported as NaN). */
export async function postgresCpuSeconds() {
  return postgresSeconds(await allStats());
}

/**
 * CPU seconds so far of each named process together with its living descendants (a worker's llama-server
 * child counts as the worker's), and of all PostgreSQL processes under `postgres`.
 */
export async function cpuByProcess(named) {
  const stats = await allStats();
  const seconds = {};
  for (const [name, pid] of Object.entries(named)) {
    let total = 0;
    const tree = new Set([pid]);
    // Parents have lower pids nearly always; two passes catch the rest.
    for (let pass = 0; pass < 2; pass++) {
      for (const [child, stat] of stats) if (tree.has(parentOf(stat))) tree.add(child);
    }
    for (const member of tree) total += stats.has(member) ? statCpuSeconds(stats.get(member)) : 0;
    seconds[name] = total;
  }
  // Backends that ended between two readings take their seconds with them (a share can read negative).
  seconds.postgres = postgresSeconds(stats) || 0;
  return seconds;
}

/** Percent of one core each process used between two cpuByProcess readings `wallSeconds` apart. */
export function cpuPercent(before, after, wallSeconds) {
  return Object.fromEntries(
    Object.keys(after).map((name) => [name, Math.round(((after[name] - before[name]) / wallSeconds) * 100)]),
  );
}
