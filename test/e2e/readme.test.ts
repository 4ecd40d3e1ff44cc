// The README's sample outputs and drill instructions, checked against what the code
// really prints and holds. Runs the compiled scripts in lib/, which `npm test` builds.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { getStatus } from '../../src/contract';
import { ACTIVITIES_FILE, applyDrill, drillLines, loadDrilledActivities } from '../support/drill';
import { startDevServer } from '../../tools/dev-server';
import { resolveTemporalCli } from '../../tools/temporal-cli';
import {
  freeDevServerPort,
  freePort,
  runScript,
  ScriptProcess,
  startWorkerProcess,
  testServer,
  testWorker,
  uniqueId,
  sleep,
} from '../support/helpers';
import { cliPattern, pageOf, README, sample, samplePattern } from '../support/readme-samples';

describe('README', () => {
  test('`npm run demo` prints the sample, starting and stopping its own dev server', async () => {
    // The ports are free when picked, but another test file may take one before the dev
    // server binds it: only then, try again on others.
    let run: Awaited<ReturnType<typeof runScript>>;
    for (let attempt = 1; ; attempt++) {
      const port = await freeDevServerPort();
      run = await runScript('tools/demo.js', [], { TEMPORAL_ADDRESS: `localhost:${port}` });
      if (attempt >= 3 || !/bind: address already in use/.test(run.stdout + run.stderr)) break;
    }
    const { code, stdout } = run;
    expect(stdout.trimEnd()).toMatch(samplePattern(sample('demo')));
    expect(code).toBe(0);
  });

  test('`npm run demo` uses a server that already answers, and leaves it running', async () => {
    // A server of its own, so that this run of pay-invoice-701 meets no other.
    const port = await freePort();
    const server = await startDevServer({ ip: '127.0.0.1', port });
    try {
      const { code, stdout } = await runScript('tools/demo.js', [], {
        TEMPORAL_ADDRESS: `localhost:${port}`,
      });
      const lines = stdout.trimEnd().split('\n');
      expect(lines[0]).toBe(`Using the Temporal server at localhost:${port}.`);
      expect(lines.slice(1).join('\n')).toMatch(samplePattern(sample('starter-success')));
      expect(code).toBe(0);
      const { status } = await server.client.workflow.getHandle('pay-invoice-701').describe();
      expect(status.name).toBe('COMPLETED');
    } finally {
      await server.teardown();
    }
  });

  test('the worker prints the sample start line and stops cleanly on SIGINT', async () => {
    const { address } = testServer();
    const { worker } = await startWorkerProcess({ TEMPORAL_ADDRESS: address });
    await worker.waitFor('Press Ctrl-C'); // the whole first line
    worker.child.kill('SIGINT');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    const expected = sample('worker-start').replace('localhost:7233', address);
    expect(worker.stdout).toBe(
      `${expected}\nSIGINT received: finishing the tasks in progress, then stopping.\nWorker stopped.\n`,
    );
  });

  describe("starter samples, in the tutorial's order", () => {
    /** The arguments of the `npm run starter` command shown just before a sample, on its page. */
    function commandArgs(name: string): string[] {
      const page = pageOf(name);
      const before = page.slice(0, page.indexOf(`<!-- sample: ${name} -->`));
      const command = [...before.matchAll(/```sh\nnpm run starter( -- .*)?\n```/g)].at(-1);
      if (!command) throw new Error(`no \`npm run starter\` command before sample ${name}`);
      return command[1] ? command[1].replace(' -- ', '').split(' ') : [];
    }

    /**
     * Runs the README's starter commands one after another, as child processes, against one
     * worker here; then `after`, while the worker still runs.
     */
    async function runStarters(
      activities: ReturnType<typeof createActivities>,
      names: string[],
      after?: (taskQueue: string) => Promise<void>,
    ) {
      const taskQueue = uniqueId('readme');
      const connection = await NativeConnection.connect({ address: testServer().address });
      const env = {
        TEMPORAL_ADDRESS: testServer().address,
        TEMPORAL_TASK_QUEUE: taskQueue,
        TEMPORAL_UI_URL: 'http://localhost:8233',
      };
      try {
        const worker = await testWorker(connection, taskQueue, activities);
        return await worker.runUntil(async () => {
          const runs = [];
          for (const name of names) runs.push(await runScript('src/starter.js', commandArgs(name), env));
          await after?.(taskQueue);
          return runs;
        });
      } finally {
        await connection.close();
      }
    }

    /** The `temporal workflow ...` commands the README shows, run against the test server. */
    async function cliSamples(taskQueue: string): Promise<void> {
      const { path: cli } = await resolveTemporalCli(process.env, () => {});
      expect(cli).toBeDefined(); // the test server came from it
      for (const name of ['cli-show', 'cli-query', 'cli-describe']) {
        // The command shown last before the sample, on the page that shows it (cli-show is in docs/cli.md).
        const page = pageOf(name);
        const before = page.slice(0, page.indexOf(`<!-- sample: ${name} -->`));
        const command = [...before.matchAll(/```sh\ntemporal (workflow .*)\n```/g)].at(-1)![1]!;
        const args = [...command.split(' '), '--address', testServer().address, '--color', 'never'];
        const { stdout } = await promisify(execFile)(cli!, args, {
          env: { ...process.env, TEMPORAL_ADDRESS: '' },
        });
        expect(stdout.replace(/[ \t]+$/gm, '').trimEnd()).toMatch(cliPattern(sample(name), taskQueue));
      }
    }

    test('`npm run starter`, the insufficient-funds command, then the `temporal workflow` commands print their samples', async () => {
      const [success, insufficient] = await runStarters(
        createActivities(new BankingService('bank')),
        ['starter-success', 'starter-insufficient'],
        cliSamples,
      );
      expect(success!.stdout.trimEnd()).toMatch(samplePattern(sample('starter-success')));
      expect(success!.code).toBe(0);
      expect(insufficient!.stdout.trimEnd()).toMatch(samplePattern(sample('starter-insufficient')));
      expect(insufficient!.code).toBe(1);
    });

    test('with the drill applied (a restarted worker), the drill command prints its sample', async () => {
      const [drill] = await runStarters(loadDrilledActivities()(new BankingService('bank')), [
        'starter-drill',
      ]);
      expect(drill!.stdout.trimEnd()).toMatch(samplePattern(sample('starter-drill')));
      expect(drill!.code).toBe(1);
    });
  });

  test('the review drill: the parked transfer is listed, resolved, and the starter prints the end', async () => {
    // A server of its own, so that the list holds this transfer alone.
    const port = await freePort();
    const server = await startDevServer({ ip: '127.0.0.1', port });
    const env = { TEMPORAL_ADDRESS: `localhost:${port}` };
    const connection = await NativeConnection.connect({ address: server.address });
    try {
      const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:fail,refund:reject') });
      const worker = await testWorker(connection, 'TRANSFER_MONEY_TASK_QUEUE', createActivities(bank));
      await worker.runUntil(async () => {
        const starter = new ScriptProcess(
          'src/starter.js',
          ['--workflow-id', 'pay-invoice-705', '--reference', '12349'],
          env,
        );
        const handle = server.client.workflow.getHandle('pay-invoice-705');
        await starter.waitFor('Web UI: ');
        while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
        const list = await runScript('src/review-cli.js', ['list'], env);
        const started = /started (\S+)/.exec(sample('review-list'))![1]!.replace(/\./g, '\\.');
        expect(list.stdout.trimEnd()).toMatch(
          samplePattern(sample('review-list'), [[started, String.raw`[\d:.TZ-]+`]]),
        );
        const resolve = await runScript(
          'src/review-cli.js',
          ['resolve', 'pay-invoice-705', '--note', 'Refunded by cheque 1001', '--operator', 'alice'],
          env,
        );
        const at = (name: string): Array<[string, string]> =>
          [...sample(name).matchAll(/\d{4}-\d\d-\d\dT[\d:.]+Z/g)].map(([time]) => [
            time.replace(/\./g, '\\.'),
            String.raw`[\d:.TZ-]+`,
          ]);
        expect(resolve.stdout.trimEnd()).toMatch(
          samplePattern(sample('review-resolve'), at('review-resolve')),
        );
        expect(resolve.code).toBe(0);
        const self = await runScript(
          'src/review-cli.js',
          ['approve', 'pay-invoice-705', '--operator', 'alice'],
          env,
        );
        expect({ code: self.code, stderr: self.stderr.trimEnd() }).toEqual({
          code: 1,
          stderr: sample('review-approve-own'),
        });
        const approve = await runScript(
          'src/review-cli.js',
          ['approve', 'pay-invoice-705', '--operator', 'bob'],
          env,
        );
        expect(approve.stdout.trimEnd()).toMatch(
          samplePattern(sample('review-approve'), at('review-approve')),
        );
        expect(approve.code).toBe(0);
        expect((await starter.exited).code).toBe(1);
        expect(starter.stdout.trimEnd()).toMatch(samplePattern(sample('starter-review')));
      });
    } finally {
      await connection.close();
      await server.teardown();
    }
  });

  test('the drill names the right lines, in the code comment and in the README', () => {
    const source = readFileSync(ACTIVITIES_FILE, 'utf8');
    const { live, commented } = drillLines(source);
    const lines = source.split('\n');
    expect(lines[live - 1]).toMatch(/^\s+return (await )?bank\.deposit\(details\.targetAccount, /);
    expect(lines[commented - 1]).toMatch(
      /^\s+\/\/ return (await )?bank\.depositThatFails\(details\.targetAccount, /,
    );
    expect(README).toContain(
      `In \`src/activities.ts\`, comment out line ${live} and uncomment line ${commented}:`,
    );
    // The README shows the three lines as they read after the swap (indentation aside).
    const after = applyDrill(source)
      .split('\n')
      .slice(live - 2, commented)
      .map((line) => line.trim())
      .join('\n');
    expect(README).toContain(`\`\`\`ts\n${after}\n\`\`\``);
  });
});
