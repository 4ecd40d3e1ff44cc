// The setup the property tests share (the chaos file's, the fleet's and the cluster's):
// their size from the environment, the random plans and the review desk, the run, the
// bank read back, one line that repeats the run, and the checks. Each test file passes
// only what differs: the server, the bank, the workers and the disruptions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { prng } from '../../src/bank/faults';
import { openApiDoor } from './api-door';
import { uniqueId } from './helpers';
import {
  checkTheRun,
  createBank,
  randomPlans,
  readBank,
  reconcileWithCli,
  reviewDesk,
  runScenario,
  summary,
  type DeskReport,
  type Plan,
  type Scenario,
  type ScenarioResult,
} from './property';

/** A property run's name, size and seed; `fleet` reads FLEET_TRANSFERS, FLEET_KILLS and FLEET_SEED. */
export interface PropertySize {
  name: string;
  transfers: number;
  kills: number;
  seed: number;
}

export function propertySize(name: string, defaults: { transfers: number; kills: number }): PropertySize {
  const variable = (what: string) => process.env[`${name.toUpperCase()}_${what}`];
  return {
    name,
    transfers: Number(variable('TRANSFERS') ?? defaults.transfers),
    kills: Number(variable('KILLS') ?? defaults.kills),
    seed: Number(variable('SEED') ?? Date.now() % 1_000_000),
  };
}

export interface PropertyOptions extends Pick<
  Scenario,
  'address' | 'bankDb' | 'workers' | 'workerNetns' | 'killGapMs' | 'infrastructure'
> {
  /** Beside BANK_FAULTS=random:<seed>, which every property run has. */
  workerEnv?: Record<string, string>;
  /** 600 s unless given. */
  deadlineMs?: number;
  /** The operator acts through `npm run review` processes against this server. */
  reviewCli?: { address: string };
  /** The run's line after `<name>: seed S; ` and before the wall time; by default the shared summary. */
  line?: (run: RunFacts) => string;
  /** When the run began, for the wall time in its line; by default now. */
  since?: number;
}

/** What a run's line is made from. */
export interface RunFacts {
  plans: readonly Plan[];
  result: ScenarioResult;
  report: DeskReport;
  balances: ReadonlyMap<string, number>;
}

/** Runs the property test: plans, desk, scenario, line and checks. Returns the scenario's result. */
export async function propertyRun(size: PropertySize, options: PropertyOptions): Promise<ScenarioResult> {
  const since = options.since ?? Date.now();
  const { name, transfers, kills, seed } = size;
  const { bankDb } = options;
  await createBank(bankDb);
  const random = prng(`${name} ${seed}`);
  const taskQueue = uniqueId(name);
  const plans = randomPlans(random, transfers, `${name[0]}${seed}`);
  // About a third of the payments come through `npm run api`, as from a calling service,
  // and every other decision of the desk's operator through its review routes.
  const api = await openApiDoor(options.address, taskQueue);
  // The clerk and the operator draw from a stream of their own, seeded from the same one,
  // so that the killer's draws and theirs do not shift each other.
  const desk = reviewDesk({
    bankDb,
    plans,
    taskQueue,
    random: prng(`${name} ${seed} desk ${random()}`),
    parksWanted: Math.max(2, Math.round(transfers / 40)),
    reviewCli: options.reviewCli,
    api,
  });
  const result = await runScenario({
    api,
    plans,
    address: options.address,
    bankDb,
    taskQueue,
    workers: options.workers,
    workerNetns: options.workerNetns,
    workerEnv: { BANK_FAULTS: `random:${seed}`, ...options.workerEnv },
    kills,
    killGapMs: options.killGapMs,
    infrastructure: options.infrastructure,
    random,
    deadlineMs: options.deadlineMs ?? 600_000,
    alongside: desk.alongside,
  }).finally(() => api.close());
  const bank = await readBank(bankDb);
  const reconcileStarted = Date.now();
  const books = await reconcileWithCli(options.address, bankDb);
  const reconcileSeconds = ((Date.now() - reconcileStarted) / 1000).toFixed(1);
  const facts: RunFacts = { plans, result, report: desk.report, balances: bank.balances };
  const line = options.line ?? ((f: RunFacts) => summary(f.plans, f.result, f.report, f.balances));
  console.log(
    `${name}: seed ${seed}; ${line(facts)}; ` +
      `reconcile (${books.owners} owners, ${reconcileSeconds} s): ${books.settled.length} settled by an operator, ` +
      `${books.stranded.length} stranded, ${books.orphans.length} orphans; ${Math.round((Date.now() - since) / 1000)} s. Repeat with ${name.toUpperCase()}_SEED=${seed}`,
  );
  // At 40 transfers and up: each kind of fault came up, transfers parked, and both kinds
  // of Update ended a review.
  checkTheRun(result, desk.report, bank, books, { kills, large: transfers >= 40 });
  return result;
}

/** A temporary folder for each test of the file, removed after it. */
export function tempDirEach(name: string): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), `money-transfer-${name}-`));
  });
  afterEach(() => rmSync(dir!, { recursive: true, force: true }));
  return () => dir!;
}

/**
 * Writes a workflow bundle built from src into `dir` and returns its path, for the workers'
 * DEV_WORKFLOW_BUNDLE: the cluster projects start no dev server, whose setup would have
 * refreshed lib's production bundle.
 */
export async function writeWorkflowBundle(dir: string): Promise<string> {
  const bundle = path.join(dir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  writeFileSync(bundle, code);
  return bundle;
}
