// Names and types shared by the workflow, the activities, the worker and the starter.
// This file is imported by workflow code, so it must stay free of Node built-ins and I/O.

export const DEFAULT_TASK_QUEUE = 'TRANSFER_MONEY_TASK_QUEUE';

export interface PaymentDetails {
  sourceAccount: string;
  targetAccount: string;
  /** A whole number of currency units. */
  amount: number;
  referenceId: string;
}

/**
 * Base class for the bank's business errors. Temporal uses an error's `name` as the
 * `ApplicationFailure.type`, so each subclass's class name is its failure type.
 */
export class BankError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidAccountError extends BankError {}

export class InsufficientFundsError extends BankError {}
