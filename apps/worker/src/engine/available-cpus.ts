import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs this process may really use: the cgroup CPU quota in a pod (v2 `cpu.max`, v1 `cfs_quota_us`), else the
 * affinity-aware `os.availableParallelism()`. node-llama-cpp's default thread count exceeds this on small nodes
 * and then runs orders of magnitude slower, so threads are always sized from here.
 */
export function availableCpus(readText: (path: string) => string | undefined = readIfPresent): number {
  const fromParallelism = availableParallelism();
  const quota = cgroupCpuQuota(readText);
  return Math.max(1, Math.min(fromParallelism, quota ?? Infinity));
}

export function cgroupCpuQuota(readText: (path: string) => string | undefined): number | undefined {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2) {
    const [quota, period] = v2.trim().split(/\s+/);
    if (quota !== 'max' && Number(quota) > 0 && Number(period) > 0) {
      return Math.max(1, Math.floor(Number(quota) / Number(period)));
    }
    return undefined;
  }
  const quotaV1 = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const periodV1 = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  if (quotaV1 > 0 && periodV1 > 0) return Math.max(1, Math.floor(quotaV1 / periodV1));
  return undefined;
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
