// A token issuer for benches and tests: a key made in memory, its public half served as
// a JWKS on a free loopback port, and tokens signed with it. Nothing is written to disk.
// People and the README use `npm run oidc`, a real OpenID provider.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { API_AUDIENCE } from './oidc';

export interface TokenClaims {
  subject?: string;
  scope?: string;
  /** The operator roles, as the `roles` claim. */
  roles?: string[];
  audience?: string;
  /** '5m' unless given; 'never' leaves out `exp`. */
  expiresIn?: string | number;
}

export interface TokenIssuer {
  issuer: string;
  jwksUrl: string;
  audience: string;
  /** The environment `npm run api` verifies these tokens with. */
  env: Record<'AUTH_JWKS_URL' | 'AUTH_ISSUER' | 'AUTH_AUDIENCE', string>;
  sign(claims?: TokenClaims): Promise<string>;
  close(): Promise<void>;
}

export async function startTokenIssuer(issuer = 'https://issuer.test', kid = 'test'): Promise<TokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256' }] });
  const server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(jwks));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return {
    issuer,
    jwksUrl,
    audience: API_AUDIENCE,
    env: { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: issuer, AUTH_AUDIENCE: API_AUDIENCE },
    sign: (claims = {}) => signToken(privateKey, kid, issuer, claims),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A token from `key`: the API's own issuer's if `key` is its, a forgery otherwise. */
export function signToken(key: KeyLike, kid: string, issuer: string, claims: TokenClaims): Promise<string> {
  const jwt = new SignJWT({
    scope: claims.scope ?? 'transfers:create transfers:read',
    ...(claims.roles ? { roles: claims.roles } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setSubject(claims.subject ?? 'billing-service')
    .setIssuer(issuer)
    .setAudience(claims.audience ?? API_AUDIENCE)
    .setIssuedAt();
  if (claims.expiresIn !== 'never') jwt.setExpirationTime(claims.expiresIn ?? '5m');
  return jwt.sign(key);
}
