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

/** Starts the provider on host:port (0 for a free port). */
export async function startOidcProvider(
  options: { host?: string; port?: number; files?: OidcFiles } = {},
): Promise<RunningProvider> {
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
    ],
    jwks: { keys: [jwk] },
    scopes: API_SCOPES,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_AUDIENCE,
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
  startOidcProvider({ host: process.env.OIDC_HOST, port, files }).then(
    (p) => {
      console.log(
        `OpenID provider at ${p.issuer}; client ${OIDC_CLIENT_ID}, its secret in ${files.secretFile}.`,
      );
      console.log(
        `For npm run api: AUTH_ISSUER=${p.issuer} AUTH_JWKS_URL=${p.jwksUrl} AUTH_AUDIENCE=${API_AUDIENCE}`,
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
