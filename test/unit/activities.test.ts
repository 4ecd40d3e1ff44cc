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
    expect(withdraw).toHaveBeenCalledWith('85-150', 250, 'ref-1-withdrawal');
  });

  test('deposit pays the target account with a -deposit reference', async () => {
    const { bank, env, activities } = setUp();
    const deposit = jest.spyOn(bank, 'deposit');
    await expect(env.run(activities.deposit, details)).resolves.toMatch(/^D-\w+$/);
    expect(deposit).toHaveBeenCalledTimes(1);
    expect(deposit).toHaveBeenCalledWith('43-812', 250, 'ref-1-deposit');
  });

  test('refund deposits back into the source account with a -refund reference', async () => {
    const { bank, env, activities } = setUp();
    const deposit = jest.spyOn(bank, 'deposit');
    await expect(env.run(activities.refund, details)).resolves.toMatch(/^D-\w+$/);
    expect(deposit).toHaveBeenCalledTimes(1);
    expect(deposit).toHaveBeenCalledWith('85-150', 250, 'ref-1-refund');
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
    jest.spyOn(bank, 'deposit').mockRejectedValue(outage);
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
