// Payload encryption: an AES-256-GCM PayloadCodec and the key ring it reads. Off unless
// PAYLOAD_KEYS_FILE names a key ring; see docs/encryption.md.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/** The encoding an encrypted payload carries, as in Temporal's encryption sample. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** The metadata key that names the key a payload was encrypted with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const KEY_BYTES = 32; // AES-256
const IV_BYTES = 12; // GCM's standard nonce
const TAG_BYTES = 16;

/** The keys a codec can decrypt with, and the one it encrypts with. */
export interface KeyRing {
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** A key ring that cannot be read, or a payload that cannot be decrypted. Never carries key material. */
export class EncryptionError extends Error {
  override name = 'EncryptionError';
}

/**
 * Reads a key ring file, a JSON object:
 *
 *   { "current": "2025-06", "keys": { "2025-06": "<32 bytes, base64>", "2025-01": "<base64>" } }
 *
 * `current` encrypts; every key in `keys` decrypts, so an old key stays until no history
 * that needs it is left. Messages name the file and key ids, never a key.
 */
export function readKeyRing(file: string): KeyRing {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EncryptionError(`Cannot read the key ring ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  const format = `${file} must be JSON like {"current": "<key id>", "keys": {"<key id>": "<32 bytes, base64>"}}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error, which may be key material: say no more.
    throw new EncryptionError(`${format}; it is not valid JSON.`);
  }
  const { current, keys } = (parsed ?? {}) as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || typeof keys !== 'object' || keys === null || Array.isArray(keys)) {
    throw new EncryptionError(`${format}.`);
  }
  const ring = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(keys as Record<string, unknown>)) {
    // Buffer.from skips what is not base64, so check that the key reads back the same.
    const key = typeof value === 'string' ? Buffer.from(value, 'base64') : undefined;
    if (!key || key.length !== KEY_BYTES || key.toString('base64') !== (value as string).trim()) {
      throw new EncryptionError(`${file}: key "${id}" must be ${KEY_BYTES} bytes in base64.`);
    }
    ring.set(id, key);
  }
  if (!ring.has(current)) {
    throw new EncryptionError(`${file}: the current key "${current}" is not among its keys.`);
  }
  return { current, keys: ring };
}

/** A random 256-bit key in base64, for a key ring. */
export function newKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/**
 * Encrypts each whole payload (metadata and data, serialized as a Payload protobuf) with
 * the current key, and records the key id in the clear so that decoding can pick the key.
 * The key id is also the cipher's associated data: a payload relabelled with another id
 * fails to decrypt.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.ring.current;
    const key = this.ring.keys.get(keyId)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(keyId));
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(keyId),
        },
        data: Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was turned on pass through as they are.
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
      if (keyId === undefined) throw new EncryptionError('An encrypted payload names no key id.');
      const key = this.ring.keys.get(keyId);
      if (!key) {
        throw new EncryptionError(
          `A payload is encrypted with key "${keyId}", which the key ring does not hold ` +
            `(it holds ${[...this.ring.keys.keys()].map((id) => `"${id}"`).join(', ')}). ` +
            'Add that key to PAYLOAD_KEYS_FILE to read it.',
        );
      }
      const data = Buffer.from(payload.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES) {
        throw new EncryptionError(`A payload encrypted with key "${keyId}" is too short to be valid.`);
      }
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([
          decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch {
        throw new EncryptionError(
          `Cannot decrypt a payload with key "${keyId}": the key ring's "${keyId}" is not the key it was ` +
            'encrypted with, or the payload was altered.',
        );
      }
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

function text(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes ? Buffer.from(bytes).toString() : undefined;
}

/** The codec PAYLOAD_KEYS_FILE configures, or undefined when it is unset (no encryption). */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionCodec | undefined {
  const file = env.PAYLOAD_KEYS_FILE?.trim();
  return file ? new EncryptionCodec(readKeyRing(file)) : undefined;
}

/** Where the codec server listens, and the URL the Web UI calls: CODEC_SERVER_URL. */
export const DEFAULT_CODEC_SERVER_URL = 'http://127.0.0.1:8888';

export function codecServerUrl(env: NodeJS.ProcessEnv = process.env): string {
  return (env.CODEC_SERVER_URL?.trim() || DEFAULT_CODEC_SERVER_URL).replace(/\/+$/, '');
}
