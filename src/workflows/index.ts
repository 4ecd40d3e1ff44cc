// The workflow bundle's entry: the worker's `workflowsPath` and tools/bundle.ts load this
// folder, and the SDK registers every function exported here as a workflow type.
export { moneyTransfer } from './transfer';
export { settleStrandedTransfer } from './stranded';
