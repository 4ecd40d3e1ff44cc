// Who calls: every route but the health checks takes a bearer JWT, verified against the
// issuer's JWKS (jose), with its issuer and audience checked, and a scope per route.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { StartupError } from '../platform/config';
import { Problem } from './problems';

export interface Principal {
  /** The token's `sub`: the calling service, recorded as the transfer's starter. */
  subject: string;
  scopes: ReadonlySet<string>;
  /** The operator roles the token grants (reviewer, approver), from its roles claim. */
  roles: ReadonlySet<string>;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

export interface AuthSettings {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** The claim that lists a person's roles: AUTH_ROLES_CLAIM, `roles` by default. */
  rolesClaim?: string;
}

/** AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE: all three, or the API does not start. */
export function authSettings(env: NodeJS.ProcessEnv = process.env): AuthSettings {
  const { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: issuer, AUTH_AUDIENCE: audience } = env;
  const missing = Object.entries({ AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: issuer, AUTH_AUDIENCE: audience })
    .filter(([, value]) => !value)
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new StartupError(
      `The API verifies every caller's token: set ${missing.join(', ')} (docs/api.md). ` +
        'Locally, `npm run oidc` runs an OpenID provider and prints the three values.',
    );
  }
  try {
    new URL(jwksUrl!);
  } catch {
    throw new StartupError(`AUTH_JWKS_URL must be a URL, got '${jwksUrl}'.`);
  }
  return {
    jwksUrl: jwksUrl!,
    issuer: issuer!,
    audience: audience!,
    rolesClaim: env.AUTH_ROLES_CLAIM || 'roles',
  };
}

/** The same, or undefined when none of the three is set (the codec server may then run open on loopback). */
export function authSettingsIfSet(env: NodeJS.ProcessEnv = process.env): AuthSettings | undefined {
  if (!env.AUTH_JWKS_URL && !env.AUTH_ISSUER && !env.AUTH_AUDIENCE) return undefined;
  return authSettings(env);
}

/** Verifies tokens against the issuer's published keys, which jose fetches and caches. */
export function jwksVerifier(settings: AuthSettings): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 5000 });
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: settings.issuer,
        audience: settings.audience,
        requiredClaims: ['exp'],
        clockTolerance: '30s', // clocks of different hosts drift a little
      }));
    } catch (err) {
      throw tokenProblem(err, settings);
    }
    if (typeof payload.sub !== 'string' || !payload.sub) {
      throw new Problem('unauthorized', 'The token names no subject (sub).');
    }
    const scopes = listClaim(payload.scope ?? payload.scp);
    return {
      subject: payload.sub,
      scopes: new Set(scopes.filter(Boolean)),
      roles: new Set(listClaim(payload[settings.rolesClaim ?? 'roles'])),
    };
  };
}

/** A claim that lists values: space-separated, or an array of strings. */
function listClaim(claim: unknown): string[] {
  const values = typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim : [];
  return values.filter((v): v is string => typeof v === 'string' && v !== '');
}

function tokenProblem(err: unknown, settings: AuthSettings): Problem {
  if (err instanceof errors.JWTExpired) return new Problem('unauthorized', 'The token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    const expected =
      err.claim === 'aud' ? settings.audience : err.claim === 'iss' ? settings.issuer : undefined;
    return new Problem(
      'unauthorized',
      `The token's ${err.claim} claim is not accepted here${expected ? ` (it must be ${expected})` : ''}.`,
    );
  }
  // The keys could not be fetched or read: a timeout, a refused connection, a non-200
  // answer (plain JOSEError), or a key set that is not JSON (JWKSInvalid).
  if (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    !(err instanceof errors.JOSEError) ||
    err.code === 'ERR_JOSE_GENERIC'
  ) {
    return new Problem('auth-unavailable', `Cannot fetch the issuer's keys from ${settings.jwksUrl}.`);
  }
  return new Problem('unauthorized', 'The token is not a valid signed JWT from the expected issuer.');
}
