// The operators' desk: a page the API serves at /desk, for people. They sign in with
// OpenID Connect (the authorization code flow with PKCE, as a public client) at the
// issuer DESK_ISSUER names; the session lives in this process, behind an HttpOnly
// cookie. The page calls the API's /reviews routes with that cookie, and every request
// that changes something carries the session's CSRF token in a header, which a page from
// another origin cannot read.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { StartupError } from '../platform/config';
import type { Principal } from './auth';
import { DESK_PAGE, DESK_SCRIPT, DESK_STYLE } from './desk-page';
import { Problem } from './problems';

export interface DeskSettings {
  /** The OpenID provider's issuer URL. */
  issuer: string;
  clientId: string;
  /** Where people reach the API, e.g. http://127.0.0.1:8080: the callback is under it. */
  publicUrl: string;
  rolesClaim?: string;
  /** How long a session lasts. 8 hours unless given. */
  sessionMs?: number;
}

/** DESK_ISSUER turns the desk on; DESK_CLIENT_ID and DESK_URL say how it is registered. */
export function deskSettings(
  env: NodeJS.ProcessEnv,
  listening: { host: string; port: number },
): DeskSettings | undefined {
  if (!env.DESK_ISSUER) return undefined;
  const publicUrl = (env.DESK_URL || `http://${listening.host}:${listening.port}`).replace(/\/+$/, '');
  try {
    new URL(env.DESK_ISSUER);
    new URL(publicUrl);
  } catch {
    throw new StartupError(
      `DESK_ISSUER and DESK_URL must be URLs, got '${env.DESK_ISSUER}' and '${publicUrl}'.`,
    );
  }
  return {
    issuer: env.DESK_ISSUER.replace(/\/+$/, ''),
    clientId: env.DESK_CLIENT_ID || 'money-transfer-desk',
    publicUrl,
    rolesClaim: env.AUTH_ROLES_CLAIM || 'roles',
  };
}

interface Session extends Principal {
  csrf: string;
  expires: number;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

const COOKIE = 'desk_session';
/** Sign-ins started and not finished, at most: each is kept 10 minutes. */
const MAX_SIGN_INS = 10_000;
const random = () => randomBytes(32).toString('base64url');

/** The desk's routes, and the session lookup the API's auth hook uses. */
export function registerDesk(
  app: FastifyInstance,
  settings: DeskSettings,
): (request: FastifyRequest) => Principal | undefined {
  const sessions = new Map<string, Session>();
  /** Sign-ins under way, by their `state`: the PKCE verifier and the nonce. */
  const signIns = new Map<string, { verifier: string; nonce: string; expires: number }>();
  const callback = `${settings.publicUrl}/desk/callback`;
  const secure = settings.publicUrl.startsWith('https:');
  let discovery: Promise<Discovery & { jwks: ReturnType<typeof createRemoteJWKSet> }> | undefined;
  const provider = () =>
    (discovery ??= fetch(`${settings.issuer}/.well-known/openid-configuration`, {
      signal: AbortSignal.timeout(5000),
    })
      .then(async (response) => {
        if (!response.ok) throw new Error(`${response.status}`);
        const doc = (await response.json()) as Discovery;
        return { ...doc, jwks: createRemoteJWKSet(new URL(doc.jwks_uri)) };
      })
      .catch((err: unknown) => {
        discovery = undefined; // ask again next time
        throw new Problem(
          'auth-unavailable',
          `Cannot read the OpenID provider at ${settings.issuer}: ${String(err)}`,
        );
      }));

  const sessionOf = (request: FastifyRequest): Session | undefined => {
    const id = cookie(request, COOKIE);
    const session = id ? sessions.get(id) : undefined;
    if (session && session.expires < Date.now()) {
      sessions.delete(id!);
      return undefined;
    }
    return session;
  };

  // The desk's own security headers: its scripts and styles only, never in a frame.
  app.addHook('onSend', async (request, reply) => {
    if (!request.url.startsWith('/desk')) return;
    void reply.header(
      'content-security-policy',
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('cache-control', 'no-store');
  });

  app.get('/desk/login', { schema: { hide: true } }, async (_request, reply) => {
    const { authorization_endpoint } = await provider();
    const state = random();
    const verifier = random();
    const nonce = random();
    // Anyone can start a sign-in: the ones that were never finished must not pile up.
    forgetExpired(signIns);
    if (signIns.size >= MAX_SIGN_INS) {
      return page(reply, 503, 'Too many sign-ins are under way; try again in a few minutes.');
    }
    signIns.set(state, { verifier, nonce, expires: Date.now() + 10 * 60_000 });
    const url = new URL(authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: callback,
      scope: 'openid roles',
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return reply.redirect(url.toString());
  });

  app.get<{ Querystring: { code?: string; state?: string; error?: string; error_description?: string } }>(
    '/desk/callback',
    { schema: { hide: true } },
    async (request, reply) => {
      const { code, state, error, error_description } = request.query;
      const signIn = state ? signIns.get(state) : undefined;
      if (state) signIns.delete(state);
      if (error) return page(reply, 400, `Sign-in failed: ${error_description ?? error}.`);
      if (!code || !signIn || signIn.expires < Date.now()) {
        return page(reply, 400, 'This sign-in has expired or was already used.');
      }
      const { token_endpoint, jwks } = await provider();
      const response = await fetch(token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: callback,
          client_id: settings.clientId,
          code_verifier: signIn.verifier,
        }),
        signal: AbortSignal.timeout(5000),
      });
      const tokens = (await response.json()) as { id_token?: string; error?: string };
      if (!response.ok || !tokens.id_token) {
        return page(
          reply,
          502,
          `The OpenID provider refused the sign-in (${tokens.error ?? response.status}).`,
        );
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(tokens.id_token, jwks, {
          issuer: settings.issuer,
          audience: settings.clientId,
          clockTolerance: '30s',
        }));
      } catch (err) {
        console.warn(`Desk sign-in refused: the ID token did not verify: ${(err as Error).message}`);
        return page(reply, 400, 'The ID token from the OpenID provider could not be verified.');
      }
      if (payload.nonce !== signIn.nonce || typeof payload.sub !== 'string') {
        return page(reply, 400, 'The ID token does not belong to this sign-in.');
      }
      const claim = payload[settings.rolesClaim ?? 'roles'];
      const roles = (Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(' ') : []).filter(
        (r): r is string => typeof r === 'string' && r !== '',
      );
      const id = random();
      forgetExpired(sessions);
      sessions.set(id, {
        subject: payload.sub,
        scopes: new Set(),
        roles: new Set(roles),
        csrf: random(),
        expires: Date.now() + (settings.sessionMs ?? 8 * 3600_000),
      });
      void reply.header(
        'set-cookie',
        `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}; Max-Age=${Math.floor((settings.sessionMs ?? 8 * 3600_000) / 1000)}`,
      );
      return reply.redirect('/desk');
    },
  );

  app.get('/desk', { schema: { hide: true } }, async (request, reply) => {
    const session = sessionOf(request);
    if (!session) return reply.redirect('/desk/login');
    return reply.type('text/html; charset=utf-8').send(
      // Replaced by functions: a `$` in a name must not be read as a replacement pattern.
      DESK_PAGE.replace('{{csrf}}', () => session.csrf)
        .replace('{{subject}}', () => escapeHtml(session.subject))
        .replace('{{roles}}', () => escapeHtml([...session.roles].join(' ')) || 'none'),
    );
  });
  app.get('/desk/desk.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(DESK_SCRIPT),
  );
  app.get('/desk/desk.css', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(DESK_STYLE),
  );
  app.post('/desk/logout', { schema: { hide: true } }, async (request, reply) => {
    const session = sessionOf(request);
    if (session && request.headers['x-csrf-token'] === session.csrf)
      sessions.delete(cookie(request, COOKIE)!);
    void reply.header('set-cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`);
    return { signedOut: true };
  });

  /** The signed-in person, for a request without a bearer token; a change needs the CSRF token. */
  return (request) => {
    const session = sessionOf(request);
    if (!session) return undefined;
    if (
      request.method !== 'GET' &&
      request.method !== 'HEAD' &&
      request.headers['x-csrf-token'] !== session.csrf
    ) {
      throw new Problem('forbidden', 'This request did not come from the desk page (no CSRF token).');
    }
    return session;
  };
}

function forgetExpired(entries: Map<string, { expires: number }>): void {
  const now = Date.now();
  for (const [key, { expires }] of entries) if (expires < now) entries.delete(key);
}

function cookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Desk</title></head>` +
        `<body><main><h1>Operators' desk</h1><p>${escapeHtml(message)}</p><p><a href="/desk/login">Sign in again</a></p></main></body></html>`,
    );
}
