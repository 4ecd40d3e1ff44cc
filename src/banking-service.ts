import { setTimeout as sleep } from 'node:timers/promises';
import { customAlphabet } from 'nanoid';
import { InsufficientFundsError, InvalidAccountError } from './shared';

const transactionId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 10);

export interface BankOptions {
  /** Each call waits this long first, like a slow bank. Off (0) by default. */
  delayMs?: number;
}

/**
 * A mock bank. It makes no network calls: the hostname only shows where a real
 * client would connect.
 */
export class BankingService {
  private readonly balances = new Map<string, number>([
    ['85-150', 2000],
    ['43-812', 0],
  ]);
  private readonly delayMs: number;

  constructor(
    readonly hostname: string,
    options: BankOptions = {},
  ) {
    this.delayMs = options.delayMs ?? 0;
  }

  async withdraw(account: string, amount: number, _referenceId: string): Promise<string> {
    await this.delay();
    const balance = this.balanceOf(account);
    if (amount > balance) {
      throw new InsufficientFundsError(
        `The account ${account} has insufficient funds to complete this transaction.`,
      );
    }
    return `W-${transactionId()}`;
  }

  async deposit(account: string, _amount: number, _referenceId: string): Promise<string> {
    await this.delay();
    this.balanceOf(account);
    return `D-${transactionId()}`;
  }

  /** Always fails with a plain Error, which Temporal treats as retryable. */
  async depositThatFails(_account: string, _amount: number, _referenceId: string): Promise<string> {
    throw new Error('This deposit has failed.');
  }

  private async delay(): Promise<void> {
    if (this.delayMs > 0) await sleep(this.delayMs);
  }

  private balanceOf(account: string): number {
    const balance = this.balances.get(account);
    if (balance === undefined) {
      throw new InvalidAccountError(`The account number ${account} is invalid.`);
    }
    return balance;
  }
}
