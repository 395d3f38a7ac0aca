// minisign-compatible keys and signatures, on Node's Ed25519 and BLAKE2b-512 (BLAKE2b-256 from @noble/hashes).
import { blake2b } from '@noble/hashes/blake2.js';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { ErrorCode, PluginError } from '../errors.js';

const UNTRUSTED_PREFIX = 'untrusted comment: ';
const TRUSTED_PREFIX = 'trusted comment: ';
const ALG_LEGACY = 'Ed';
const ALG_PREHASHED = 'ED';
const KDF_NONE = Buffer.from([0, 0]);
const CHK_ALG = 'B2';
const SECRET_KEY_BYTES = 158;
const PUBLIC_KEY_BYTES = 42;
const SIGNATURE_BYTES = 74;

/** A minisign public key. */
export interface MinisignPublicKey {
  /** The 8-byte key id. */
  keyId: Buffer;
  /** The raw 32-byte Ed25519 key. */
  raw: Buffer;
  /** As a Node key object. */
  key: KeyObject;
}

/** An unencrypted minisign secret key. */
export interface MinisignSecretKey {
  keyId: Buffer;
  /** The 32-byte Ed25519 seed. */
  seed: Buffer;
  /** The raw 32-byte public key. */
  publicRaw: Buffer;
  key: KeyObject;
}

/** What a verified signature says. */
export interface VerifiedSignature {
  /** Key id as minisign prints it (16 hex digits). */
  keyId: string;
  /** The trusted comment (signed). */
  trustedComment: string;
  /** True for a legacy `Ed` signature over the raw bytes. */
  legacy: boolean;
}

function signatureError(message: string, data: Record<string, unknown> = {}): PluginError {
  return new PluginError(ErrorCode.SIGNATURE, message, { data });
}

/** A key id the way minisign prints it: the 8 bytes as a little-endian number, in hex. */
export function formatKeyId(keyId: Buffer): string {
  return keyId.readBigUInt64LE(0).toString(16).toUpperCase().padStart(16, '0');
}

const b64url = (b: Buffer): string => b.toString('base64url');

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) }, format: 'jwk' });
}

function checksum(keyId: Buffer, seed: Buffer, publicRaw: Buffer): Buffer {
  return Buffer.from(blake2b(Buffer.concat([Buffer.from(ALG_LEGACY), keyId, seed, publicRaw]), { dkLen: 32 }));
}

function decodeLine(line: string | undefined, bytes: number, what: string): Buffer {
  const trimmed = (line ?? '').trim();
  const decoded = Buffer.from(trimmed, 'base64');
  if (trimmed === '' || decoded.length !== bytes || decoded.toString('base64') !== trimmed) {
    throw signatureError(`${what} is malformed: expected base64 of ${bytes} bytes.`);
  }
  return decoded;
}

function splitLines(text: string): string[] {
  return text.replace(/\r\n/g, '\n').split('\n');
}

/** Generates a key pair as minisign's file texts (the secret key unencrypted, as `minisign -G -W` writes it). */
export function generateKeyPair(): { publicKeyText: string; secretKeyText: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const publicRaw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const keyId = randomBytes(8);
  const secret = Buffer.concat([
    Buffer.from(ALG_LEGACY),
    KDF_NONE,
    Buffer.from(CHK_ALG),
    randomBytes(32), // KDF salt: unused without a KDF, kept for the layout.
    Buffer.alloc(16), // KDF ops and mem limits: unused without a KDF.
    keyId,
    seed,
    publicRaw,
    checksum(keyId, seed, publicRaw),
  ]);
  const id = formatKeyId(keyId);
  return {
    publicKeyText: `${UNTRUSTED_PREFIX}minisign public key ${id}\n${Buffer.concat([Buffer.from(ALG_LEGACY), keyId, publicRaw]).toString('base64')}\n`,
    secretKeyText: `${UNTRUSTED_PREFIX}minisign secret key\n${secret.toString('base64')}\n`,
    keyId: id,
  };
}

/** Parses a public key: a minisign .pub file's text, or its base64 line alone. */
export function parsePublicKey(text: string): MinisignPublicKey {
  const lines = splitLines(text.trim());
  const line = lines.length >= 2 && lines[0]?.startsWith(UNTRUSTED_PREFIX) ? lines[1] : lines[0];
  const bytes = decodeLine(line, PUBLIC_KEY_BYTES, 'The public key');
  if (bytes.subarray(0, 2).toString() !== ALG_LEGACY) throw signatureError('The public key is not an Ed25519 minisign key.');
  const raw = bytes.subarray(10, 42);
  return { keyId: bytes.subarray(2, 10), raw, key: publicKeyObject(raw) };
}

/** Parses an unencrypted minisign secret key file and checks its checksum. */
export function parseSecretKey(text: string): MinisignSecretKey {
  const lines = splitLines(text.trim());
  if (!lines[0]?.startsWith(UNTRUSTED_PREFIX)) throw signatureError('The secret key file must start with "untrusted comment: ".');
  // The most common mix-up: the .pub file keygen wrote beside the secret key.
  if (Buffer.from((lines[1] ?? '').trim(), 'base64').length === PUBLIC_KEY_BYTES) {
    throw signatureError('That is a minisign public key (.pub), which can only verify. Sign with the secret key file (.key) that keygen wrote beside it.', { reason: 'public-key' });
  }
  const bytes = decodeLine(lines[1], SECRET_KEY_BYTES, 'The secret key');
  if (bytes.subarray(0, 2).toString() !== ALG_LEGACY) throw signatureError('The secret key is not an Ed25519 minisign key.');
  if (!bytes.subarray(2, 4).equals(KDF_NONE)) {
    throw signatureError('The secret key is password-protected; skillplug reads only unencrypted keys. Create one with "skillplug keygen" or "minisign -G -W".');
  }
  if (bytes.subarray(4, 6).toString() !== CHK_ALG) throw signatureError('The secret key uses an unknown checksum algorithm.');
  const keyId = bytes.subarray(54, 62);
  const seed = bytes.subarray(62, 94);
  const publicRaw = bytes.subarray(94, 126);
  const stored = bytes.subarray(126, 158);
  // minisign 0.11 writes an all-zero checksum for unencrypted (-W) keys.
  const unchecked = stored.every((b) => b === 0);
  if (!unchecked && !checksum(keyId, seed, publicRaw).equals(stored)) throw signatureError('The secret key is corrupt: its checksum does not match.');
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: b64url(publicRaw) }, format: 'jwk' });
  return { keyId, seed, publicRaw, key };
}

/** Signs bytes in minisign's prehashed (`ED`) mode; returns the `.minisig` file text. */
export function signBytes(data: Uint8Array, fileName: string, secret: MinisignSecretKey, now: Date = new Date()): string {
  const digest = createHash('blake2b512').update(data).digest();
  const signature = sign(null, digest, secret.key);
  const trustedComment = `timestamp:${Math.floor(now.getTime() / 1000)}\tfile:${fileName}\thashed`;
  const globalSignature = sign(null, Buffer.concat([signature, Buffer.from(trustedComment)]), secret.key);
  return [
    `${UNTRUSTED_PREFIX}signature from skillplug secret key`,
    Buffer.concat([Buffer.from(ALG_PREHASHED), secret.keyId, signature]).toString('base64'),
    `${TRUSTED_PREFIX}${trustedComment}`,
    globalSignature.toString('base64'),
    '',
  ].join('\n');
}

/**
 * Verifies a `.minisig` over `data` against trusted keys: key id, signature (prehashed `ED` or
 * legacy `Ed`), and the global signature over the trusted comment. Throws `E_SIGNATURE`.
 */
export function verifyBytes(data: Uint8Array, signatureText: string, keys: readonly MinisignPublicKey[]): VerifiedSignature {
  const lines = splitLines(signatureText);
  if (!lines[0]?.startsWith(UNTRUSTED_PREFIX)) throw signatureError('The signature file must start with "untrusted comment: ".');
  const sig = decodeLine(lines[1], SIGNATURE_BYTES, 'The signature');
  const alg = sig.subarray(0, 2).toString();
  if (alg !== ALG_LEGACY && alg !== ALG_PREHASHED) throw signatureError(`Unknown signature algorithm ${JSON.stringify(alg)}.`);
  if (!lines[2]?.startsWith(TRUSTED_PREFIX)) throw signatureError('The signature file lacks its "trusted comment: " line.');
  const trustedComment = (lines[2] as string).slice(TRUSTED_PREFIX.length);
  const globalSignature = decodeLine(lines[3], 64, 'The global signature');
  const keyId = sig.subarray(2, 10);
  const key = keys.find((k) => k.keyId.equals(keyId));
  if (!key) {
    throw signatureError(`The signature was made by key ${formatKeyId(keyId)}, which is not a trusted key. Trust that key's .pub file if you trust its owner (--trusted-key for list, run and serve; --pubkey for verify).`, {
      reason: 'unknown-key',
      keyId: formatKeyId(keyId),
    });
  }
  const signature = sig.subarray(10);
  const message = alg === ALG_PREHASHED ? createHash('blake2b512').update(data).digest() : data;
  if (!verify(null, message, key.key, signature)) {
    throw signatureError(`The signature by key ${formatKeyId(keyId)} does not match the file: the file was changed after signing, or the signature is forged.`, {
      reason: 'bad-signature',
      keyId: formatKeyId(keyId),
    });
  }
  if (!verify(null, Buffer.concat([signature, Buffer.from(trustedComment)]), key.key, globalSignature)) {
    throw signatureError(`The trusted comment of the signature by key ${formatKeyId(keyId)} was tampered with.`, { reason: 'bad-comment', keyId: formatKeyId(keyId) });
  }
  return { keyId: formatKeyId(keyId), trustedComment, legacy: alg === ALG_LEGACY };
}
