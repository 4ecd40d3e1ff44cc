import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { UnreliableBank } from '../../src/bank/faults';
import { InsufficientFundsError, InvalidAccountError, TransferAlreadyOwnedError } from '../../src/contract';
import { transferDetails, voidedReferences } from '../support/helpers';

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

/** The owner MockActivityEnvironment's activities run as: its workflow id. */
const AS_WORKFLOW = { owner: 'test' };

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
    expect(withdraw).toHaveBeenCalledWith('85-150', 250, 'ref-1-withdrawal', {
      owner: 'test',
      signal: expect.any(AbortSignal) as unknown,
    });
  });

  test('deposit pays the target account with a -deposit reference', async () => {
    const { bank, env, activities } = setUp();
    const deposit = jest.spyOn(bank, 'deposit');
    await expect(env.run(activities.deposit, details)).resolves.toMatch(/^D-\w+$/);
    expect(deposit).toHaveBeenCalledTimes(1);
    expect(deposit).toHaveBeenCalledWith('43-812', 250, 'ref-1-deposit', {
      owner: 'test',
      signal: expect.any(AbortSignal) as unknown,
    });
  });

  test('refund after a failed deposit voids the deposit reference, then pays the source back under -refund', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
    const refund = jest.spyOn(bank, 'refund');
    await expect(env.run(activities.refund, details)).resolves.toEqual({
      outcome: 'refunded',
      transactionId: expect.stringMatching(/^D-\w+$/),
      account: '85-150',
    });
    expect(refund).toHaveBeenCalledTimes(1);
    expect(refund).toHaveBeenCalledWith('85-150', 250, 'ref-1-refund', {
      owner: 'test',
      signal: expect.any(AbortSignal) as unknown,
    });
    expect(await voidedReferences(bank.store)).toEqual(['ref-1-deposit']);
    expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  describe('findWhatIsOwed, for a transfer ended from outside', () => {
    test('a withdrawal that never posted is voided, and nothing is owed; the deposit is left alone', async () => {
      const { bank, env, activities } = setUp();
      await expect(env.run(activities.findWhatIsOwed, details)).resolves.toEqual({
        outcome: 'nothing-to-refund',
      });
      expect(await voidedReferences(bank.store)).toEqual(['ref-1-withdrawal']);
      await expect(bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW)).rejects.toThrow(
        /was voided/,
      );
    });

    test('a deposit that posted: the money arrived, nothing is owed', async () => {
      const { bank, env, activities } = setUp();
      await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
      const depositId = await bank.deposit('43-812', 250, 'ref-1-deposit', AS_WORKFLOW);
      await expect(env.run(activities.findWhatIsOwed, details)).resolves.toEqual({
        outcome: 'deposit-posted',
        transactionId: depositId,
      });
    });

    test('withdrawn only: the deposit is voided, and a refund is owed in round 1', async () => {
      const { bank, env, activities } = setUp();
      await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
      await expect(env.run(activities.findWhatIsOwed, details)).resolves.toEqual({
        outcome: 'refund-owed',
        round: 1,
      });
      expect(await voidedReferences(bank.store)).toEqual(['ref-1-deposit']);
      expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 1750, '43-812': 0 });
    });

    test('rounds refused or settled are skipped; a round that posted is the refund', async () => {
      const { bank, env, activities } = setUp();
      await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
      await bank.settle('ref-1-deposit', AS_WORKFLOW);
      await bank.settle('ref-1-refund', AS_WORKFLOW); // round 1 voided, as round 2's refund does
      await expect(env.run(activities.findWhatIsOwed, details)).resolves.toEqual({
        outcome: 'refund-owed',
        round: 2,
      });
      const refundId = await bank.refund('85-150', 250, 'ref-1-refund-2', AS_WORKFLOW);
      await expect(env.run(activities.findWhatIsOwed, details)).resolves.toEqual({
        outcome: 'refunded',
        transactionId: refundId,
        account: '85-150',
      });
    });

    test("another execution's payment is refused before anything of it is touched", async () => {
      const { bank, env, activities } = setUp();
      await bank.withdraw('85-150', 250, 'ref-1-withdrawal', { owner: 'the-first-submission' });
      await expect(env.run(activities.findWhatIsOwed, details)).rejects.toBeInstanceOf(
        TransferAlreadyOwnedError,
      );
      expect(await voidedReferences(bank.store)).toEqual([]);
      await expect(
        bank.deposit('43-812', 250, 'ref-1-deposit', { owner: 'the-first-submission' }),
      ).resolves.toMatch(/^D-/);
    });
  });

  test('refund finds a deposit that posted after all, and refunds nothing', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
    const depositId = await bank.deposit('43-812', 250, 'ref-1-deposit', AS_WORKFLOW);
    const refund = jest.spyOn(bank, 'refund');
    await expect(env.run(activities.refund, details, { failedStep: 'deposit' as const })).resolves.toEqual({
      outcome: 'deposit-posted',
      transactionId: depositId,
    });
    expect(refund).not.toHaveBeenCalled();
  });

  test('refund of a withdrawal that never posted voids it and refunds nothing', async () => {
    const { bank, env, activities } = setUp();
    await expect(env.run(activities.refund, details, { failedStep: 'withdraw' as const })).resolves.toEqual({
      outcome: 'nothing-to-refund',
    });
    expect(await voidedReferences(bank.store)).toEqual(['ref-1-withdrawal']);
    await expect(bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW)).rejects.toThrow(/voided/);
  });

  test('refund of a withdrawal that posted pays it back', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
    await expect(
      env.run(activities.refund, details, { failedStep: 'withdraw' as const }),
    ).resolves.toMatchObject({
      outcome: 'refunded',
    });
    expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('a later refund round settles the earlier rounds first: one that posted late is the refund', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
    const late = await bank.refund('85-150', 250, 'ref-1-refund', AS_WORKFLOW); // round 1 posted after it timed out
    await expect(env.run(activities.refund, details, { round: 2, account: '43-812' })).resolves.toEqual({
      outcome: 'refunded',
      transactionId: late,
      account: '85-150',
    });
    expect((await bank.store.entries()).map((e) => e.reference)).toEqual([
      'ref-1-withdrawal',
      'ref-1-refund',
    ]);
  });

  test('a refund round goes to the account given, under its own reference, once the earlier rounds are void', async () => {
    const { bank, env, activities } = setUp();
    await bank.withdraw('85-150', 250, 'ref-1-withdrawal', AS_WORKFLOW);
    await expect(env.run(activities.refund, details, { round: 2, account: '43-812' })).resolves.toMatchObject(
      {
        outcome: 'refunded',
        account: '43-812',
      },
    );
    expect(await voidedReferences(bank.store)).toEqual(['ref-1-deposit', 'ref-1-refund']);
    expect((await bank.store.entries()).map((e) => [e.reference, e.account, e.amount])).toEqual([
      ['ref-1-withdrawal', '85-150', -250],
      ['ref-1-refund-2', '43-812', 250],
    ]);
  });

  test('refundAccounts lists the open accounts, without the transfer target', async () => {
    const { bank, env, activities } = setUp();
    await expect(env.run(activities.refundAccounts, details)).resolves.toEqual(['85-150']);
    await bank.store.setClosed('85-150', true);
    await expect(env.run(activities.refundAccounts, details)).resolves.toEqual([]);
  });

  test('notifyOperator logs one error line with the Web UI link, and POSTs JSON to the webhook', async () => {
    const received: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({
          method: req.method,
          type: req.headers['content-type'],
          body: JSON.parse(body) as unknown,
        });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const logger = new RecordingLogger();
      const env = new MockActivityEnvironment(
        { workflowExecution: { workflowId: 'wf-1', runId: 'run-1' }, workflowNamespace: 'default' },
        { logger },
      );
      const activities = createActivities(new BankingService('bank'), {
        webUiLink: (id, run) => `http://ui/${id}/${run}`,
        webhookUrl: `http://127.0.0.1:${port}/review`,
      });
      await env.run(activities.notifyOperator, { details, reason: 'The refund was refused.', reminder: 0 });
      expect(logger.entries.filter((e) => e.level === 'ERROR').map((e) => e.message)).toEqual([
        'Transfer wf-1 needs review: 250 is owed to 85-150 (reference ref-1). The refund was refused. http://ui/wf-1/run-1',
      ]);
      expect(received).toEqual([
        {
          method: 'POST',
          type: 'application/json',
          body: {
            event: 'transfer.needs-review',
            namespace: 'default',
            workflowId: 'wf-1',
            runId: 'run-1',
            link: 'http://ui/wf-1/run-1',
            details,
            reason: 'The refund was refused.',
            reminder: 0,
          },
        },
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('notifyOperator fails, to be retried, when the webhook does not take the notice', async () => {
    const server = createServer((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const env = new MockActivityEnvironment(undefined, { logger: new RecordingLogger() });
      const activities = createActivities(new BankingService('bank'), {
        webhookUrl: `http://127.0.0.1:${port}/`,
      });
      await expect(env.run(activities.notifyOperator, { details, reason: 'x', reminder: 1 })).rejects.toThrow(
        'The review webhook answered 503 Service Unavailable',
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a cancelled attempt stops its bank call before it posts, and heartbeats while it waits', async () => {
    const bank = new UnreliableBank('bank-api.example.com', { delayMs: 1500 });
    const env = new MockActivityEnvironment(undefined, { logger: new RecordingLogger() });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const run = env.run(createActivities(bank).withdraw, details);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    env.cancel();
    await expect(run).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await bank.store.entries()).toEqual([]);
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
