// The workflow's public surface: its query, its updates and the status they return.
// Clients (the starter, the review CLI, tests) import this file, never the workflow's
// flow, as Temporal's early-return sample keeps its shared.ts. It holds only definitions,
// so it is safe in workflow code and in Node alike.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RefundResult } from './shared';

export type { ReviewPolicy } from './shared';

export type TransferStage =
  | 'validating'
  | 'withdrawing'
  | 'depositing'
  | 'refunding'
  | 'needs-review'
  | 'completed'
  | 'failed'
  | 'cancelled';

export interface TransferStatus {
  stage: TransferStage;
  /** The bank reference of each step. */
  references?: { withdrawal: string; deposit: string; refund: string };
  withdrawId?: string;
  depositId?: string;
  refundId?: string;
  /** Where the refund went, when an operator sent it somewhere other than the source. */
  refundedTo?: string;
  /** Money that left (or may have left) the source account and is not back yet. */
  owed?: number;
  /** How a step with an unknown outcome was settled, once it was. */
  settlement?: RefundResult['outcome'];
  /** The failure that stopped the transfer, or that keeps the refund from completing. */
  lastFailure?: string;
  cancelRequested?: boolean;
  /** While the transfer waits for an operator: why, and what they can do. */
  review?: {
    reason: string;
    /** The account the refund failed on. */
    failedAccount: string;
    /** Where `refundTo` may send the money instead. */
    accounts: string[];
    reminders: number;
  };
  /** An operator's decision, once made. */
  resolution?: { action: 'retryRefund' } | { action: 'refundTo'; account: string } | ManualResolution;
}

export interface ManualResolution {
  action: 'resolveManually';
  note: string;
  operator: string;
}

/** Where the transfer is, and the bank's transaction ids so far. */
export const getStatus = defineQuery<TransferStatus>('getStatus');

/** Operator actions for a transfer in `needs-review`. Each returns the new status. */
export const retryRefund = defineUpdate<TransferStatus>('retryRefund');
export const refundTo = defineUpdate<TransferStatus, [{ account: string }]>('refundTo');
export const resolveManually = defineUpdate<TransferStatus, [{ note: string; operator: string }]>(
  'resolveManually',
);

/** What an operator decided for a transfer in review. */
export type OperatorDecision = NonNullable<TransferStatus['resolution']>;
