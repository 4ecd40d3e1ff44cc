import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { BankingService, type CallOptions } from '../../src/bank/banking-service';
import { InvalidAccountError } from '../../src/contract';
import { loadDrilledActivities } from '../support/drill';
import { activityRuns, logs, useTestTemporal, transferDetails } from '../support/helpers';

const temporal = useTestTemporal();

const newBank = () => new BankingService('bank-api.example.com');

/** Asserts WorkflowFailedError -> ActivityFailure(activity) -> ApplicationFailure(type). */
async function expectFailure(
  result: Promise<string>,
  activity: string,
  type: string,
  message: string | RegExp,
): Promise<void> {
  await expect(result).rejects.toBeInstanceOf(WorkflowFailedError);
  const err = (await result.catch((e: unknown) => e)) as WorkflowFailedError;
  expect(err.cause).toBeInstanceOf(ActivityFailure);
  expect(err.cause).toMatchObject({ activityType: activity });
  const appFailure = err.cause?.cause;
  expect(appFailure).toBeInstanceOf(ApplicationFailure);
  expect(appFailure).toMatchObject({ type });
  expect((appFailure as ApplicationFailure).message).toMatch(message);
}

test('a successful transfer returns both transaction ids', async () => {
  const { handle, result } = await temporal().transfer(createActivities(newBank()), transferDetails());
  await expect(result).resolves.toMatch(/^Transfer complete \(transaction IDs: W-\w+, D-\w+\)$/);
  expect(await activityRuns(handle)).toEqual([
    { name: 'withdraw', attempts: 1, outcome: 'completed' },
    { name: 'deposit', attempts: 1, outcome: 'completed' },
  ]);
});

test('insufficient funds: 25000 from 85-150 fails the withdraw with InsufficientFundsError', async () => {
  const { result } = await temporal().transfer(
    createActivities(newBank()),
    transferDetails({ amount: 25000 }),
  );
  await expectFailure(
    result,
    'withdraw',
    'InsufficientFundsError',
    'The account 85-150 has insufficient funds to complete this transaction.',
  );
});

test('invalid source account 85-151 fails the withdraw with InvalidAccountError', async () => {
  const { result } = await temporal().transfer(
    createActivities(newBank()),
    transferDetails({ sourceAccount: '85-151' }),
  );
  await expectFailure(result, 'withdraw', 'InvalidAccountError', 'The account number 85-151 is invalid.');
});

test.each([
  ['InsufficientFundsError', { amount: 25000 }],
  ['InvalidAccountError', { sourceAccount: '85-151' }],
])('%s is non-retryable: the withdraw runs exactly once and nothing else runs', async (type, override) => {
  const bank = newBank();
  const withdraw = jest.spyOn(bank, 'withdraw');
  const { handle, result } = await temporal().transfer(createActivities(bank), transferDetails(override));
  await expectFailure(result, 'withdraw', type, /./);
  const err = (await result.catch((e: unknown) => e)) as WorkflowFailedError;
  expect((err.cause as ActivityFailure).retryState).toBe(RetryState.NON_RETRYABLE_FAILURE);
  expect(await activityRuns(handle)).toEqual([{ name: 'withdraw', attempts: 1, outcome: 'failed' }]);
  expect(withdraw).toHaveBeenCalledTimes(1);
});

test('invalid target account: the deposit fails once, the refund runs, and the deposit error fails the workflow', async () => {
  const bank = newBank();
  const deposit = jest.spyOn(bank, 'deposit');
  const refund = jest.spyOn(bank, 'refund');
  const details = transferDetails({ targetAccount: '43-813' });
  const { handle, result } = await temporal().transfer(createActivities(bank), details);
  await expectFailure(result, 'deposit', 'InvalidAccountError', 'The account number 43-813 is invalid.');
  expect(await activityRuns(handle)).toEqual([
    { name: 'withdraw', attempts: 1, outcome: 'completed' },
    { name: 'deposit', attempts: 1, outcome: 'failed' },
    { name: 'refund', attempts: 1, outcome: 'completed' },
  ]);
  expect(deposit.mock.calls.map((call) => call[0])).toEqual(['43-813']);
  expect(refund.mock.calls.map((call) => call[0])).toEqual(['85-150']);
  const refundLog = logs.find(
    (e) =>
      e.message.startsWith('Refund successful. Confirmation ID: D-') &&
      e.meta?.workflowId === handle.workflowId,
  );
  expect(refundLog).toMatchObject({
    level: 'INFO',
    meta: expect.objectContaining({ workflowId: handle.workflowId, referenceId: details.referenceId }),
  });
});

test('transient deposit failure (the tutorial drill): 3 deposit attempts, a refund, then the deposit error', async () => {
  const createDrilled = loadDrilledActivities();
  const { handle, result } = await temporal().transfer(createDrilled(newBank()), transferDetails());
  await expectFailure(result, 'deposit', 'Error', 'This deposit has failed.');
  const err = (await result.catch((e: unknown) => e)) as WorkflowFailedError;
  expect((err.cause as ActivityFailure).retryState).toBe(RetryState.MAXIMUM_ATTEMPTS_REACHED);
  expect(await activityRuns(handle)).toEqual([
    { name: 'withdraw', attempts: 1, outcome: 'completed' },
    { name: 'deposit', attempts: 3, outcome: 'failed' },
    { name: 'refund', attempts: 1, outcome: 'completed' },
  ]);
  const depositLog = logs.find(
    (e) => e.message.startsWith('Deposit failed: ') && e.meta?.workflowId === handle.workflowId,
  );
  expect(depositLog).toMatchObject({
    level: 'ERROR',
    message: 'Deposit failed: Activity task failed: This deposit has failed.',
    meta: expect.objectContaining({ referenceId: expect.stringMatching(/^ref-/) }),
  });
  // The activity's own log line for each failed attempt carries the ids too.
  const attemptLogs = logs.filter(
    (e) => e.message === 'Deposit failed' && e.meta?.workflowId === handle.workflowId,
  );
  expect(attemptLogs.map((e) => e.meta?.attempt as unknown)).toEqual([1, 2, 3]);
  expect(attemptLogs[0]?.meta).toMatchObject({ referenceId: expect.stringMatching(/^ref-/) });
});

test('a refund that keeps failing is retried past the 3 attempts the steps get, then succeeds', async () => {
  // The deposit into the target is rejected, and the first 3 refunds fail with a plain error.
  class FlakyRefundBank extends BankingService {
    refunds = 0;
    override async deposit(account: string): Promise<string> {
      throw new InvalidAccountError(`The account number ${account} is invalid.`);
    }
    override async refund(
      account: string,
      amount: number,
      referenceId: string,
      call?: CallOptions,
    ): Promise<string> {
      if (++this.refunds <= 3) throw new Error('The refund was rejected.');
      return super.refund(account, amount, referenceId, call);
    }
  }
  const bank = new FlakyRefundBank('bank-api.example.com');
  const { handle, result } = await temporal().transfer(createActivities(bank), transferDetails());
  await expectFailure(result, 'deposit', 'InvalidAccountError', /invalid/);
  expect(await activityRuns(handle)).toEqual([
    { name: 'withdraw', attempts: 1, outcome: 'completed' },
    { name: 'deposit', attempts: 1, outcome: 'failed' },
    { name: 'refund', attempts: 4, outcome: 'completed' },
  ]);
  expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
  const refundLogs = logs.filter(
    (e) => e.message === 'Refund failed' && e.meta?.workflowId === handle.workflowId,
  );
  expect(refundLogs.map((e) => e.meta?.attempt as unknown)).toEqual([1, 2, 3]);
});
