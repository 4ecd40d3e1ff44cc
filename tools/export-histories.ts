// `npm run histories`: runs one transfer of each kind on a fresh dev server and saves
// its history with `temporal workflow show --output json` into test/histories/, where
// the replay test reads them. Rerun it after an intended change to the workflow.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { BankingService } from '../src/banking-service';
import { startDevServer } from './dev-server';
import { installLogger, WORKFLOW_BUNDLE_PATH } from '../src/worker';
import type { PaymentDetails } from '../src/shared';
import { DEFAULT_TRANSFER } from '../src/starter';
import { resolveTemporalCli } from './temporal-cli';
import type { moneyTransfer } from '../src/workflows';

const OUT_DIR = path.resolve(__dirname, '..', '..', 'test', 'histories');
const TASK_QUEUE = 'export-histories';

/** The tutorial's failure drill: every deposit into the target fails with a plain Error. */
class FailingDepositBank extends BankingService {
  override async deposit(account: string, amount: number, referenceId: string): Promise<string> {
    if (referenceId.endsWith('-deposit')) return this.depositThatFails(account, amount, referenceId);
    return super.deposit(account, amount, referenceId);
  }
}

const details = DEFAULT_TRANSFER;
const CASES: Array<{ name: string; bank: BankingService; args: unknown[] }> = [
  { name: 'success', bank: new BankingService('bank'), args: [details] },
  { name: 'insufficient-funds', bank: new BankingService('bank'), args: [{ ...details, amount: 25000 }] },
  { name: 'failing-deposit-refund', bank: new FailingDepositBank('bank'), args: [details] },
  { name: 'bad-input', bank: new BankingService('bank'), args: [{ ...details, amount: -5 }] },
];

async function main(): Promise<void> {
  installLogger('WARN');
  const cli = await resolveTemporalCli();
  if (!cli.path)
    throw new Error('Exporting histories needs the `temporal` CLI binary: set TEMPORAL_CLI_PATH.');
  const server = await startDevServer();
  const connection = await Connection.connect({ address: server.address });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    mkdirSync(OUT_DIR, { recursive: true });
    for (const { name, bank, args } of CASES) {
      const worker = await Worker.create({
        connection: workerConnection,
        taskQueue: TASK_QUEUE,
        workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
        activities: createActivities(bank),
      });
      const workflowId = `history-${name}`;
      await worker.runUntil(async () => {
        const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue: TASK_QUEUE,
          workflowId,
          args: args as [PaymentDetails],
        });
        await handle.result().catch(() => undefined);
      });
      const json = execFileSync(
        cli.path,
        ['workflow', 'show', '--workflow-id', workflowId, '--address', server.address, '--output', 'json'],
        { encoding: 'utf8' },
      );
      writeFileSync(path.join(OUT_DIR, `${name}.json`), json);
      console.log(`wrote test/histories/${name}.json`);
    }
  } finally {
    await workerConnection.close();
    await connection.close();
    await server.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
