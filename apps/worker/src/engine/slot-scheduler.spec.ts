import { SlotScheduler } from './slot-scheduler.js';

const full = () => new Error('full');

describe('SlotScheduler', () => {
  it('hands out free slots, then queues up to capacity, then refuses', async () => {
    const scheduler = new SlotScheduler(['a', 'b'], 1, full);
    const first = await scheduler.acquire();
    const second = await scheduler.acquire();
    expect([first.slot, second.slot].sort()).toEqual(['a', 'b']);
    const waiting = scheduler.acquire();
    expect(scheduler.queued).toBe(1);
    await expect(scheduler.acquire()).rejects.toThrow('full');
    first.release();
    await expect(waiting).resolves.toMatchObject({ slot: first.slot });
    expect(scheduler.busy).toBe(2);
  });

  it('serves waiters first come, first served, and ignores double releases', async () => {
    const scheduler = new SlotScheduler(['only'], 3, full);
    const holder = await scheduler.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => scheduler.acquire().then((lease) => (order.push(n), lease)));
    holder.release();
    holder.release();
    (await waiters[0]).release();
    (await waiters[1]).release();
    (await waiters[2]).release();
    expect(order).toEqual([1, 2, 3]);
    expect(scheduler.busy).toBe(0);
  });

  it('drops a waiter whose signal aborts, without losing the slot', async () => {
    const scheduler = new SlotScheduler(['only'], 2, full);
    const holder = await scheduler.acquire();
    const abort = new AbortController();
    const cancelled = scheduler.acquire(abort.signal);
    abort.abort(new Error('client went away'));
    await expect(cancelled).rejects.toThrow('client went away');
    expect(scheduler.queued).toBe(0);
    holder.release();
    expect(scheduler.busy).toBe(0);
    await expect(scheduler.acquire()).resolves.toMatchObject({ slot: 'only' });
  });

  it('rejects everything waiting on drain', async () => {
    const scheduler = new SlotScheduler(['only'], 2, full);
    await scheduler.acquire();
    const waiting = scheduler.acquire();
    scheduler.rejectWaiting(new Error('draining'));
    await expect(waiting).rejects.toThrow('draining');
  });
});
