import { availableParallelism } from 'node:os';
import { availableCpus, cgroupCpuQuota } from './available-cpus.js';

const files = (map: Record<string, string>) => (path: string) => map[path];

describe('available CPUs', () => {
  it('reads a cgroup v2 quota (a pod limited to 1.5 CPUs gets 1 thread)', () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '400000 100000\n' }))).toBe(4);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
  });

  it('reads a cgroup v1 quota', () => {
    const v1 = {
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
    };
    expect(cgroupCpuQuota(files(v1))).toBe(2);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1' }))).toBeUndefined();
  });

  it('never exceeds the CPUs the process may run on', () => {
    expect(availableCpus(files({ '/sys/fs/cgroup/cpu.max': '6400000 100000' }))).toBe(availableParallelism());
    expect(availableCpus(files({ '/sys/fs/cgroup/cpu.max': '100000 100000' }))).toBe(1);
    expect(availableCpus(files({}))).toBe(availableParallelism());
  });
});
