// A bank that is slow, loses replies, or says no on purpose, to see what the workflow does
// when a real bank does: `UnreliableBank` wraps the plain mock bank's calls with latency
// (BANK_DELAY_MS) and faults (BANK_FAULTS). Off by default.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BankingService,
  type BankOptions,
  type CallOptions,
  type ReferenceState,
  type Settlement,
} from './banking-service';
import { type BankError, InvalidAccountError, STEP_ATTEMPT_TIMEOUT_MS } from '../contract';

/** The bank calls a fault can hit. `lookup` is a settle, or a read of a reference's state. */
export const BANK_OPERATIONS = ['withdraw', 'deposit', 'refund', 'lookup'] as const;
export type BankOperation = (typeof BANK_OPERATIONS)[number];

export const FAULT_KINDS = ['fail', 'post-then-fail', 'late', 'reject'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * What happens to one call:
 * - `fail`: a plain error before anything posts (Temporal retries it);
 * - `post-then-fail`: the call posts, then the reply is lost as a plain error;
 * - `late`: the call waits `delayMs` ignoring cancellation, then posts, like a request
 *   stuck in a queue after the caller gave up;
 * - `reject`: a definite "no" (InvalidAccountError); nothing posts.
 * With no fault, `delayMs` is latency that honours cancellation.
 */
export interface Injection {
  fault?: FaultKind;
  delayMs: number;
}

export interface FaultPlan {
  /** What to do to this call; undefined means a normal call. */
  next(op: BankOperation, reference: string): Injection | undefined;
  /** How the plan reads in a log line. */
  readonly description: string;
}

/** Longer than an attempt of withdraw or deposit may take. */
export const DEFAULT_LATE_MS = STEP_ATTEMPT_TIMEOUT_MS + 1000;

export class BankFaultsError extends Error {
  override name = 'BankFaultsError';
}

const USAGE =
  'BANK_FAULTS is a comma-separated list of OP:FAULT[*TIMES], or random:SEED. ' +
  `OP is one of ${BANK_OPERATIONS.join(', ')}; FAULT is one of ${FAULT_KINDS.join(', ')}, or late=<ms>; ` +
  '*TIMES limits it to the first TIMES calls for each reference. Example: deposit:late*1,refund:fail*2';

/** OP:FAULT[=ms][*TIMES], with FAULT one of FAULT_KINDS. */
const FAULT_RULE = new RegExp(`^(\\w+):(${FAULT_KINDS.join('|')})(?:=(\\d+))?(?:\\*(\\d+))?$`);

/** Parses BANK_FAULTS. An empty or missing value means no faults. */
export function parseFaults(spec: string | undefined): FaultPlan | undefined {
  const text = spec?.trim();
  if (!text) return undefined;
  const random = /^random:(\d+)$/.exec(text);
  if (random) return randomFaults(Number(random[1]));

  const rules = new Map<BankOperation, { fault: FaultKind; delayMs: number; times?: number }>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = FAULT_RULE.exec(part);
    if (!match) throw new BankFaultsError(`BANK_FAULTS: cannot read '${part}'. ${USAGE}`);
    const [, op, fault, ms, times] = match as unknown as [string, string, FaultKind, string?, string?];
    if (!(BANK_OPERATIONS as readonly string[]).includes(op)) {
      throw new BankFaultsError(`BANK_FAULTS: unknown operation '${op}'. ${USAGE}`);
    }
    if (ms !== undefined && fault !== 'late') {
      throw new BankFaultsError(`BANK_FAULTS: only 'late' takes a delay, in '${part}'. ${USAGE}`);
    }
    if (fault === 'reject' && op === 'lookup') {
      throw new BankFaultsError(`BANK_FAULTS: a lookup cannot be rejected, in '${part}'. ${USAGE}`);
    }
    if (times !== undefined && Number(times) < 1) {
      throw new BankFaultsError(`BANK_FAULTS: *TIMES must be at least 1, in '${part}'.`);
    }
    if (rules.has(op as BankOperation)) {
      throw new BankFaultsError(`BANK_FAULTS: '${op}' is given twice. ${USAGE}`);
    }
    rules.set(op as BankOperation, {
      fault,
      delayMs: fault === 'late' ? Number(ms ?? DEFAULT_LATE_MS) : 0,
      times: times === undefined ? undefined : Number(times),
    });
  }
  const calls = new Map<string, number>();
  return {
    description: text,
    next(op, reference) {
      const rule = rules.get(op);
      if (!rule) return undefined;
      const key = `${op} ${reference}`;
      const n = (calls.get(key) ?? 0) + 1;
      calls.set(key, n);
      if (rule.times !== undefined && n > rule.times) return undefined;
      return { fault: rule.fault, delayMs: rule.delayMs };
    },
  };
}

/**
 * Draws a fault and a latency for every call from the seed, the operation, the
 * reference and how many calls this process made for it. Latencies fall on both sides
 * of the 5 s timeout. Refunds and lookups are never rejected: a definite refund failure
 * parks the transfer for an operator, which a random run cannot resolve.
 */
export function randomFaults(seed: number): FaultPlan {
  const calls = new Map<string, number>();
  return {
    description: `random:${seed}`,
    next(op, reference) {
      const key = `${op} ${reference}`;
      const n = (calls.get(key) ?? 0) + 1;
      calls.set(key, n);
      const rand = prng(`${seed}|${key}|${n}`);
      const roll = rand();
      const between = (lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));
      if (roll < 0.45) return { delayMs: between(0, 150) };
      if (roll < 0.55) return { delayMs: between(2000, 4500) };
      if (roll < 0.62) return { delayMs: between(5200, 7000) };
      if (roll < 0.72) return { fault: 'fail', delayMs: between(0, 150) };
      if (roll < 0.82) return { fault: 'post-then-fail', delayMs: between(0, 150) };
      if (roll < 0.92) return { fault: 'late', delayMs: between(5500, 8000) };
      if (op === 'withdraw' || op === 'deposit') return { fault: 'reject', delayMs: 0 };
      return { fault: 'fail', delayMs: 0 };
    },
  };
}

/** A small seeded generator (FNV-1a into mulberry32): the same text gives the same numbers. */
export function prng(text: string): () => number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface UnreliableBankOptions extends BankOptions {
  /** Each call waits this long first, like a slow bank: a number, or [min, max] drawn per call. */
  delayMs?: number | readonly [number, number];
  /** Faults to inject on purpose (BANK_FAULTS). None by default. */
  faults?: FaultPlan;
  /** Told of every injected fault, to log it. */
  onFault?: (op: BankOperation, reference: string, injection: Injection) => void;
}

/**
 * The mock bank with latency and faults around each call. A call waits, honouring its
 * AbortSignal (a `late` one does not, like a request already in the bank's queue), then
 * fails before posting, posts and loses the reply, or is refused as a real bank refuses,
 * voiding its reference; with no fault it is the plain bank's call.
 */
export class UnreliableBank extends BankingService {
  /** The calls the plan says to refuse, by identity: concurrent calls of one reference differ. */
  private readonly refusals = new WeakMap<CallOptions, BankError>();

  constructor(
    hostname: string,
    private readonly unreliable: UnreliableBankOptions = {},
  ) {
    super(hostname, unreliable);
  }

  override withdraw(
    account: string,
    amount: number,
    reference: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.inject('withdraw', reference, call, (c) => super.withdraw(account, amount, reference, c));
  }

  override deposit(
    account: string,
    amount: number,
    reference: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.inject('deposit', reference, call, (c) => super.deposit(account, amount, reference, c));
  }

  override refund(
    account: string,
    amount: number,
    reference: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.inject('refund', reference, call, (c) => super.refund(account, amount, reference, c));
  }

  override settle(reference: string, call: CallOptions = {}): Promise<Settlement> {
    return this.inject('lookup', reference, call, (c) => super.settle(reference, c));
  }

  override referenceState(reference: string, call: CallOptions = {}): Promise<ReferenceState> {
    return this.inject('lookup', reference, call, (c) => super.referenceState(reference, c));
  }

  protected override refusalFor(_reference: string, call: CallOptions): BankError | undefined {
    return this.refusals.get(call);
  }

  private async inject<T>(
    op: BankOperation,
    reference: string,
    call: CallOptions,
    action: (call: CallOptions) => Promise<T>,
  ): Promise<T> {
    const injection = this.unreliable.faults?.next(op, reference);
    if (injection?.fault) this.unreliable.onFault?.(op, reference, injection);
    const delayMs = injection?.delayMs || this.latency();
    const late = injection?.fault === 'late';
    if (late) await sleep(delayMs);
    else if (delayMs > 0) await sleep(delayMs, undefined, { signal: call.signal });
    if (injection?.fault === 'fail')
      throw new Error(`Injected fault: ${op} ${reference} failed before posting.`);
    // A late call posts whatever its caller did meanwhile: it no longer listens.
    const sent: CallOptions = late ? { owner: call.owner } : { ...call };
    if (injection?.fault === 'reject') {
      this.refusals.set(
        sent,
        new InvalidAccountError(`The account for ${reference} is invalid (injected fault).`),
      );
    }
    const result = await action(sent);
    if (injection?.fault === 'post-then-fail') {
      throw new Error(`Injected fault: ${op} ${reference} posted, then its reply was lost.`);
    }
    return result;
  }

  private latency(): number {
    const delay = this.unreliable.delayMs ?? 0;
    if (typeof delay === 'number') return delay;
    return Math.round(delay[0] + Math.random() * (delay[1] - delay[0]));
  }
}
