import { MockActivityEnvironment } from '@temporalio/testing';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/banking-service';
import { InsufficientFundsError, InvalidAccountError } from '../../src/shared';
import { transferDetails } from '../helpers';

const details = transferDetails({ referenceId: 'ref-1' });

/** Keeps what the activities log, so tests can check it. */
class RecordingLogger implements Logger {
  readonly entries: Array<{ level: LogLevel; message: string; meta?: LogMetadata }> = [];
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.entries.push({ level, message, meta });
  }
  trace = (m: string, meta?: LogMetadata) => this.log('TRACE', m, meta);
  debug = (m: string, meta?: LogMetadata) => this.log('DEBUG', m, meta);
  info = (m: string, meta?: LogMetadata) => this.log('INFO', m, meta);
  warn = (m: string, meta?: LogMetadata) => this.log('WARN', m, meta);
  error = (m: string, meta?: LogMetadata) => this.log('ERROR', m, meta);
}

function setUp() {
  const bank = new BankingService('bank-api.example.com');
  const logger = new RecordingLogger();
  const env = new MockActivityEnvironment(undefined, { logger });
  return { bank, logger, env, activities: createActivities(bank) };
}

describe('activities', () => {
  test('withdraw takes the amount from the source account with a -withdrawal reference', async () => {
    const { bank, env, activities } = setUp();
    const withdraw = jest.spyOn(bank, 'withdraw');
    await expect(env.run(activities.withdraw, details)).resolves.toMatch(/^W-\w+$/);
    expect(withdraw).toHaveBeenCalledTimes(1);
    expect(withdraw).toHaveBeenCalledWith('85-150', 250, 'ref-1-withdrawal', expect.any(AbortSignal));
  });

  test('deposit pays the target account with a -deposit reference', async () => {
    const { bank, env, activities } = setUp();
    const deposit = jest.spyOn(bank, 'deposit');
    await expect(env.run(activities.deposit, details)).resolves.toMatch(/^D-\w+$/);
    expect(deposit).toHaveBeenCalledTimes(1);
    expect(deposit).toHaveBeenCalledWith('43-812', 250, 'ref-1-deposit', expect.any(AbortSignal));
  });

  test('refund after a failed deposit voids the deposit reference, then pays the source back under -refund', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal');
    const refund = jest.spyOn(bank, 'refund');
    await expect(env.run(activities.refund, details)).resolves.toEqual({
      outcome: 'refunded',
      transactionId: expect.stringMatching(/^D-\w+$/),
    });
    expect(refund).toHaveBeenCalledTimes(1);
    expect(refund).toHaveBeenCalledWith('85-150', 250, 'ref-1-refund', expect.any(AbortSignal));
    expect(bank.store.voided()).toEqual(['ref-1-deposit']);
    expect(Object.fromEntries(bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('refund finds a deposit that posted after all, and refunds nothing', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal');
    const depositId = await bank.deposit('43-812', 250, 'ref-1-deposit');
    const refund = jest.spyOn(bank, 'refund');
    await expect(env.run(activities.refund, details, 'deposit' as const)).resolves.toEqual({
      outcome: 'deposit-posted',
      transactionId: depositId,
    });
    expect(refund).not.toHaveBeenCalled();
  });

  test('refund of a withdrawal that never posted voids it and refunds nothing', async () => {
    const { bank, env, activities } = setUp();
    await expect(env.run(activities.refund, details, 'withdraw' as const)).resolves.toEqual({
      outcome: 'nothing-to-refund',
    });
    expect(bank.store.voided()).toEqual(['ref-1-withdrawal']);
    await expect(bank.withdraw('85-150', 250, 'ref-1-withdrawal')).rejects.toThrow(/voided/);
  });

  test('refund of a withdrawal that posted pays it back', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal');
    await expect(env.run(activities.refund, details, 'withdraw' as const)).resolves.toMatchObject({
      outcome: 'refunded',
    });
    expect(Object.fromEntries(bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('a cancelled attempt stops its bank call before it posts, and heartbeats while it waits', async () => {
    const bank = new BankingService('bank-api.example.com', { delayMs: 1500 });
    const env = new MockActivityEnvironment(undefined, { logger: new RecordingLogger() });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const run = env.run(createActivities(bank).withdraw, details);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    env.cancel();
    await expect(run).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(bank.store.entries()).toEqual([]);
    expect(heartbeats.length).toBeGreaterThanOrEqual(2);
  });

  test.each([
    ['withdraw', { sourceAccount: '85-151' }],
    ['deposit', { targetAccount: '43-813' }],
    ['refund', { sourceAccount: '85-151' }],
  ] as const)('%s rethrows InvalidAccountError as it is, without logging it', async (name, override) => {
    const { env, activities, logger } = setUp();
    const run = env.run(activities[name], { ...details, ...override });
    await expect(run).rejects.toBeInstanceOf(InvalidAccountError);
    await expect(run).rejects.toThrow(/^The account number \d\d-\d{3} is invalid\.$/);
    expect(logger.entries.filter((e) => e.level === 'ERROR')).toEqual([]);
  });

  test('withdraw logs and rethrows InsufficientFundsError', async () => {
    const { env, activities, logger } = setUp();
    const run = env.run(activities.withdraw, { ...details, amount: 2001 });
    await expect(run).rejects.toBeInstanceOf(InsufficientFundsError);
    await expect(run).rejects.toThrow(
      'The account 85-150 has insufficient funds to complete this transaction.',
    );
    expect(logger.entries).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'Withdrawal failed' }),
    );
  });

  test.each([
    ['deposit', 'Deposit failed'],
    ['refund', 'Refund failed'],
  ] as const)('%s logs "%s" and rethrows any other error', async (name, message) => {
    const { bank, env, activities, logger } = setUp();
    const outage = new Error('bank unavailable');
    jest.spyOn(bank, name).mockRejectedValue(outage);
    await expect(env.run(activities[name], details)).rejects.toBe(outage);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message,
        meta: expect.objectContaining({ error: outage, referenceId: 'ref-1' }),
      }),
    );
  });
});
