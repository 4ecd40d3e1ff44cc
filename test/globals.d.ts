import type { TestWorkflowEnvironment } from '@temporalio/testing';

declare global {
  // Shared between jest's global setup and teardown, which run in the same process.
  var __MONEY_TRANSFER_TEST__: { server: TestWorkflowEnvironment; dir: string } | undefined;
}
