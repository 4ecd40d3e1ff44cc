// A Temporal call that may outlast what an HTTP caller should wait: its answer within a
// bound, or 'pending', and then the call is abandoned (the workflow goes on regardless).
import { setTimeout as sleep } from 'node:timers/promises';

/** The answer, or 'pending' once `ms` have passed; the call is then abandoned. */
export async function withinBound<T>(
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T | 'pending'> {
  const timer = new AbortController();
  const abandon = new AbortController();
  const answer = call(abandon.signal);
  answer.catch(() => undefined);
  try {
    return await Promise.race([answer, sleep(ms, 'pending' as const, { signal: timer.signal })]);
  } finally {
    timer.abort();
    abandon.abort();
  }
}
