// The starter's command line: its flags, their defaults (the tutorial's transfer), and
// the same payment rules the workflow applies, worded with the flags' names.
import { parseArgs } from 'node:util';
import { InvalidPaymentDetailsError, validatePaymentDetails, type PaymentDetails } from '../contract';
import { UsageError } from './config';

/** The tutorial's transfer: the starter's defaults, and the transfer the demo, tests and tools run. */
export const DEFAULT_TRANSFER: PaymentDetails = {
  sourceAccount: '85-150',
  targetAccount: '43-812',
  amount: 250,
  referenceId: '12345',
};

export const DEFAULT_WORKFLOW_ID = 'pay-invoice-701';

export const USAGE = `Usage: npm run starter -- [options]

Starts one money transfer and waits for its result.

Options:
  --from ACCOUNT        account to withdraw from   (default ${DEFAULT_TRANSFER.sourceAccount})
  --to ACCOUNT          account to deposit into    (default ${DEFAULT_TRANSFER.targetAccount})
  --amount N            whole currency units, > 0  (default ${DEFAULT_TRANSFER.amount})
  --reference ID        the transfer's reference   (default ${DEFAULT_TRANSFER.referenceId})
  --workflow-id ID      the workflow id            (default ${DEFAULT_WORKFLOW_ID})
  --help                show this help

Exit codes: 0 transfer completed, 1 transfer failed or its result unknown (it says
why), 2 usage error, 130 stopped waiting with Ctrl-C (the transfer goes on).`;

export type StarterArgs = { help: true } | { help: false; details: PaymentDetails; workflowId: string };

/** Each PaymentDetails field's flag, to word the workflow's own validation messages. */
const FLAGS = {
  sourceAccount: '--from',
  targetAccount: '--to',
  amount: '--amount',
  referenceId: '--reference',
};

export function parseStarterArgs(argv: string[]): StarterArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: 'string', default: DEFAULT_TRANSFER.sourceAccount },
        to: { type: 'string', default: DEFAULT_TRANSFER.targetAccount },
        amount: { type: 'string', default: String(DEFAULT_TRANSFER.amount) },
        reference: { type: 'string', default: DEFAULT_TRANSFER.referenceId },
        'workflow-id': { type: 'string', default: DEFAULT_WORKFLOW_ID },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    // parseArgs names the unknown flag or missing value in its first line.
    const reason = ((err as Error).message.split('\n')[0] ?? '').replace(/\.$/, '');
    const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous$/.exec(reason);
    throw new UsageError(
      ambiguous ? `${reason} (for a value starting with '-', write ${ambiguous[1]}=VALUE)` : reason,
    );
  }
  if (values.help) return { help: true };

  const amount = values.amount.trim();
  const details = {
    sourceAccount: values.from.trim(),
    targetAccount: values.to.trim(),
    // Digits only: Number() would also take '1e3', '0x10' or ' '. Anything else stays
    // a string, which the shared validation rejects with the text as given.
    amount: /^\d+$/.test(amount) && Number.isSafeInteger(Number(amount)) ? Number(amount) : values.amount,
    referenceId: values.reference.trim(),
  };
  // The same rules the workflow applies, worded with the flags' names.
  try {
    validatePaymentDetails(details);
  } catch (err) {
    if (!(err instanceof InvalidPaymentDetailsError)) throw err;
    let message = err.message;
    for (const [field, flag] of Object.entries(FLAGS)) message = message.replaceAll(field, flag);
    throw new UsageError(message);
  }
  const workflowId = values['workflow-id'].trim();
  if (!workflowId) throw new UsageError('--workflow-id must not be empty');
  return { help: false, details, workflowId };
}
