// `npm run oidc`: a local OpenID provider (the certified `oidc-provider` package) beside
// the dev server, so the HTTP API checks real tokens on a laptop too. One client may use
// the client-credentials grant; its access tokens are JWTs for the API's audience. The
// signing key and the client's secret are made on the first run and kept outside the
// repository, in the cache folder; the secret is never printed.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export const OIDC_CLIENT_ID = 'money-transfer-local';
/** The operators' desk: a public client that signs people in with the code flow and PKCE. */
export const DESK_CLIENT_ID = 'money-transfer-desk';
/**
 * The people of the local provider and their roles (the `roles` claim). Any name signs in
 * with any password, as oidc-provider's development login does; a name not listed here
 * has no role.
 */
export const LOCAL_PEOPLE: Readonly<Record<string, readonly string[]>> = {
  alice: ['reviewer'],
  bob: ['approver'],
  carol: ['reviewer', 'approver'],
};
export const API_AUDIENCE = 'urn:money-transfer:api';
export const API_SCOPES = ['transfers:create', 'transfers:read', 'transfers:list'];

export interface OidcFiles {
  dir: string;
  /** The client's secret, alone in a file, for `curl -u client:$(cat ...)`. */
  secretFile: string;
}

/** Where the provider keeps its key and the client's secret: OIDC_DIR, else the cache folder. */
export function oidcFiles(env: NodeJS.ProcessEnv = process.env): OidcFiles {
  const cache = env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  const dir = env.OIDC_DIR || path.join(cache, 'money-transfer', 'oidc');
  return { dir, secretFile: path.join(dir, 'client-secret') };
}

/** The signing key and the secret, made on the first run (files readable by their owner only). */
async function keysAndSecret(files: OidcFiles): Promise<{ jwk: JWK; secret: string }> {
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(files.dir, 'signing-key.json');
  if (!existsSync(keyFile)) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = {
      ...(await exportJWK(privateKey)),
      kid: randomBytes(8).toString('hex'),
      alg: 'ES256',
      use: 'sig',
    };
    writeFileSync(keyFile, JSON.stringify(jwk), { mode: 0o600 });
  }
  if (!existsSync(files.secretFile)) {
    writeFileSync(files.secretFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  return {
    jwk: JSON.parse(readFileSync(keyFile, 'utf8')) as JWK,
    secret: readFileSync(files.secretFile, 'utf8').trim(),
  };
}

export interface RunningProvider {
  issuer: string;
  jwksUrl: string;
  tokenUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the provider on host:port (0 for a free port). `deskUrls` are the desks allowed
 * to sign people in (their `/desk/callback`); by default `npm run api`'s on port 8080.
 */
export async function startOidcProvider(
  options: { host?: string; port?: number; files?: OidcFiles; deskUrls?: string[] } = {},
): Promise<RunningProvider> {
  const deskUrls = options.deskUrls ?? ['http://127.0.0.1:8080', 'http://localhost:8080'];
  const host = options.host ?? '127.0.0.1';
  const files = options.files ?? oidcFiles();
  const { jwk, secret } = await keysAndSecret(files);
  // ESM only: loaded through Node's require of ES modules.
  const { default: Provider, errors } = await import('oidc-provider');
  const { createServer } = await import('node:http');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as { port: number };
  const issuer = `http://${host}:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT_ID,
        client_secret: secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
        scope: API_SCOPES.join(' '),
      },
      {
        client_id: DESK_CLIENT_ID,
        token_endpoint_auth_method: 'none', // a public client: PKCE instead of a secret
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: deskUrls.map((url) => `${url}/desk/callback`),
        id_token_signed_response_alg: 'ES256',
        scope: 'openid roles',
      },
    ],
    jwks: { keys: [jwk] },
    scopes: [...API_SCOPES, 'openid', 'roles'],
    claims: { openid: ['sub'], roles: ['roles'] },
    // The desk reads the roles from the ID token.
    conformIdTokenClaims: false,
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, roles: [...(LOCAL_PEOPLE[sub] ?? [])] }),
    }),
    pkce: { required: () => true },
    features: {
      // The development login: any name, any password. Local only.
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The service client's tokens are for the API; the desk needs only its ID token.
        defaultResource: (_ctx, client) => (client.clientId === OIDC_CLIENT_ID ? API_AUDIENCE : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== API_AUDIENCE) throw new errors.InvalidTarget();
          return {
            scope: API_SCOPES.join(' '),
            audience: API_AUDIENCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    tokenUrl: `${issuer}/token`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (require.main === module) {
  const port = Number(process.env.OIDC_PORT || 9000);
  const files = oidcFiles();
  // OIDC_DESK_URLS: the desks that may sign people in, comma-separated (default: port 8080's).
  const deskUrls = process.env.OIDC_DESK_URLS?.split(',').map((url) => url.trim().replace(/\/+$/, ''));
  startOidcProvider({ host: process.env.OIDC_HOST, port, files, deskUrls }).then(
    (p) => {
      console.log(
        `OpenID provider at ${p.issuer}; client ${OIDC_CLIENT_ID}, its secret in ${files.secretFile}.`,
      );
      console.log(
        `For npm run api: AUTH_ISSUER=${p.issuer} AUTH_JWKS_URL=${p.jwksUrl} AUTH_AUDIENCE=${API_AUDIENCE} DESK_ISSUER=${p.issuer}`,
      );
      console.log(
        `The desk's people (any password): ${Object.entries(LOCAL_PEOPLE)
          .map(([name, roles]) => `${name} (${roles.join(', ')})`)
          .join(', ')}.`,
      );
      const stop = () => void p.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
