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

/**
 * The whole of a transfer's progress, as `getStatus` and the updates return it. The
 * TransferStatus search attribute holds only its stage.
 */
export interface TransferView {
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
export const getStatus = defineQuery<TransferView>('getStatus');

/** Operator actions for a transfer in `needs-review`. Each returns the new status. */
export const retryRefund = defineUpdate<TransferView>('retryRefund');
export const refundTo = defineUpdate<TransferView, [{ account: string }]>('refundTo');
export const resolveManually = defineUpdate<TransferView, [{ note: string; operator: string }]>(
  'resolveManually',
);

/** What an operator decided for a transfer in review. */
export type OperatorDecision = NonNullable<TransferView['resolution']>;
