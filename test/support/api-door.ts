// The HTTP API as the property runs use it: `npm run api` as a process, with tokens from a
// test issuer, and a caller that POSTs the way a real one does: it may give up on an
// answer and send the same POST again, and it retries while the API or Temporal is down.
import { transferId } from '../../src/api/app';
import type { PaymentDetails } from '../../src/contract';
import { startTokenIssuer, type TokenIssuer } from '../../tools/token-issuer';
import { freePort, ScriptProcess, sleep } from './helpers';

const SUBJECT = 'property-caller';
/** The reviewer the property desk acts as through the API: the workflow records this name. */
export const DESK_SUBJECT = 'property-reviewer';

/** What the POSTs of a run met. */
export interface ApiFacts {
  /** Payments sent through the API. */
  payments: number;
  posts: number;
  /** Each answer by status and problem type, with 'no answer' for a POST given up on. */
  answers: Map<string, number>;
  /** Answers no POST of a payment may get: another transfer named, a key reused, a 500. */
  wrong: string[];
  /** The API process SIGKILLed and started again. */
  restarts: number;
}

export interface ApiDoor {
  facts: ApiFacts;
  /** POSTs `details` under `key` until a definite answer; the first try gives up after `timeoutMs`. */
  post(details: PaymentDetails, key: string, timeoutMs?: number): Promise<void>;
  /** The workflow id the API gives this run's `key`. */
  transferId(key: string): string;
  /**
   * A reviewer's decision through `POST /reviews/{id}/retry` or `refund-to`, with a token
   * whose roles claim says `reviewer`: the status it left; 'accepted' when the refund round
   * outlasted the API's wait (202); 'raced' when the transfer no longer waited for review;
   * 'lost' when no answer came (the API restarting).
   */
  decide(
    id: string,
    action: 'retry' | 'refund-to',
    account?: string,
  ): Promise<{ stage: string; refundedTo?: string } | 'raced' | 'lost' | 'accepted'>;
  /** SIGKILLs the API, then starts it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function openApiDoor(address: string, taskQueue: string): Promise<ApiDoor> {
  const issuer: TokenIssuer = await startTokenIssuer();
  const token = await issuer.sign({ subject: SUBJECT, expiresIn: '2h' });
  const reviewer = await issuer.sign({
    subject: DESK_SUBJECT,
    roles: ['reviewer'],
    scope: '',
    expiresIn: '2h',
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const start = async () => {
    const api = new ScriptProcess('src/api.js', [], {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      API_PORT: String(port),
      ...issuer.env,
    });
    await api.waitFor('API listening on ', 60_000);
    return api;
  };
  let api = await start();
  const facts: ApiFacts = { payments: 0, posts: 0, answers: new Map(), wrong: [], restarts: 0 };
  const tally = (label: string) => facts.answers.set(label, (facts.answers.get(label) ?? 0) + 1);

  const post = async (details: PaymentDetails, key: string, timeoutMs?: number) => {
    const expected = transferId(SUBJECT, key);
    for (let attempt = 1; ; attempt++) {
      facts.posts++;
      let status: number;
      let body: Record<string, unknown>;
      try {
        const response = await fetch(`${base}/transfers`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'idempotency-key': key,
            'content-type': 'application/json',
          },
          body: JSON.stringify(details),
          signal: AbortSignal.timeout(attempt === 1 && timeoutMs !== undefined ? timeoutMs : 60_000),
        });
        status = response.status;
        body = (await response.json()) as Record<string, unknown>;
      } catch (err) {
        // Given up on, or the API was restarting: the same POST again, as a client does.
        tally('no answer');
        if (attempt >= 60) throw new Error(`POST ${key}: no answer after ${attempt} tries: ${String(err)}`);
        await sleep(1000);
        continue;
      }
      const type = typeof body.type === 'string' ? body.type.replace('/problems/', '') : '';
      tally(`${status}${type ? ` ${type}` : ''}`);
      if (status === 503) {
        if (attempt >= 60) throw new Error(`POST ${key}: 503 after ${attempt} tries`);
        await sleep(2000);
        continue;
      }
      const named =
        typeof body.id === 'string'
          ? body.id
          : typeof body.transfer === 'string'
            ? decodeURIComponent(body.transfer.replace(/^\/transfers\//, ''))
            : undefined;
      // 502 is a definite answer (the payment was settled); any other 5xx is a fault.
      if (named !== expected || type === 'idempotency-key-reused' || (status >= 500 && status !== 502)) {
        // The API logs what a 500 hid; the line names the key's route, so take the last one.
        const logged = status === 500 ? api.stderr.split('\nAPI: ').at(-1)?.slice(0, 1500) : undefined;
        facts.wrong.push(
          `${key} (try ${attempt}): ${status} ${JSON.stringify(body).slice(0, 300)}${logged ? `; the API logged: ${logged}` : ''}`,
        );
      }
      return;
    }
  };

  const decide: ApiDoor['decide'] = async (id, action, account) => {
    let response: Response;
    try {
      response = await fetch(`${base}/reviews/${encodeURIComponent(id)}/${action}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${reviewer}`,
          ...(account ? { 'content-type': 'application/json' } : {}),
        },
        body: account ? JSON.stringify({ account }) : undefined,
      });
    } catch {
      return 'lost';
    }
    const body = (await response.json()) as { stage: string; refundedTo?: string; detail?: string };
    if (response.status === 200) return body;
    if (response.status === 202) return 'accepted'; // taken, and still being carried out
    if (response.status === 404) return 'raced'; // it ended meanwhile
    if (response.status === 409 && body.detail?.startsWith('This transfer is not waiting for review')) {
      return 'raced';
    }
    if (response.status === 503) return 'lost';
    throw new Error(`POST /reviews/${id}/${action}: ${response.status} ${JSON.stringify(body)}`);
  };

  return {
    facts,
    post,
    decide,
    transferId: (key) => transferId(SUBJECT, key),
    restart: async () => {
      api.child.kill('SIGKILL');
      await api.exited;
      api = await start();
      facts.restarts++;
    },
    close: async () => {
      api.child.kill('SIGTERM');
      await api.exited;
      await issuer.close();
    },
  };
}
