import { createHash } from 'node:crypto';

/** 22 URL-safe characters of a SHA-256: 132 bits. */
export function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}
