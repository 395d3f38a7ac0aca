import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode, PluginError } from '../../src/index.js';
import { generateKeyPair, parsePublicKey, parseSecretKey, signBytes, verifyBytes } from '../../src/signing/minisign.js';
import { tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const hasMinisign = await run('minisign', ['-v']).then(
  () => true,
  () => false,
);
const skipInterop = hasMinisign ? false : 'the minisign tool is not installed (apt-get install minisign)';

function signatureCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PluginError);
    assert.equal(err.code, ErrorCode.SIGNATURE);
    return String(err.data?.reason ?? 'malformed');
  }
  return undefined;
}

describe('minisign format', () => {
  const pair = generateKeyPair();
  const secret = parseSecretKey(pair.secretKeyText);
  const pub = parsePublicKey(pair.publicKeyText);
  const data = Buffer.from('the plugin bytes\n');

  it('signs and verifies in the prehashed mode with a signed trusted comment', () => {
    const sig = signBytes(data, 'libx.so', secret, new Date(1_700_000_000_000));
    const verified = verifyBytes(data, sig, [pub]);
    assert.equal(verified.keyId, pair.keyId);
    assert.equal(verified.legacy, false);
    assert.equal(verified.trustedComment, 'timestamp:1700000000\tfile:libx.so\thashed');
  });

  it('accepts the base64 line alone as a public key', () => {
    assert.equal(parsePublicKey(pair.publicKeyText.split('\n')[1] as string).keyId.equals(pub.keyId), true);
  });

  it('refuses tampered data, a tampered trusted comment, an unknown key and malformed files', () => {
    const sig = signBytes(data, 'libx.so', secret);
    assert.equal(signatureCode(() => verifyBytes(Buffer.from('changed'), sig, [pub])), 'bad-signature');
    const lines = sig.split('\n');
    lines[2] = 'trusted comment: timestamp:1\tfile:evil.so\thashed';
    assert.equal(signatureCode(() => verifyBytes(data, lines.join('\n'), [pub])), 'bad-comment');
    const other = parsePublicKey(generateKeyPair().publicKeyText);
    assert.equal(signatureCode(() => verifyBytes(data, sig, [other])), 'unknown-key');
    assert.equal(signatureCode(() => verifyBytes(data, 'garbage', [pub])), 'malformed');
    assert.equal(signatureCode(() => verifyBytes(data, sig.replace(/\n[A-Za-z0-9+/=]{100}\n/, '\nAAAA\n'), [pub])), 'malformed');
  });

  it('detects a corrupted secret key', () => {
    const line = pair.secretKeyText.split('\n')[1] as string;
    const bytes = Buffer.from(line, 'base64');
    bytes[70] = (bytes[70] as number) ^ 1;
    assert.equal(signatureCode(() => parseSecretKey(`untrusted comment: x\n${bytes.toString('base64')}\n`)), 'malformed');
  });

  describe('interop with the minisign tool', () => {
    it('minisign -V verifies what skillplug signed', { skip: skipInterop }, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'libplugin.so');
      writeFileSync(file, data);
      writeFileSync(`${file}.minisig`, signBytes(data, 'libplugin.so', secret));
      writeFileSync(path.join(dir, 'k.pub'), pair.publicKeyText);
      const { stdout } = await run('minisign', ['-V', '-m', file, '-p', path.join(dir, 'k.pub')]);
      assert.match(stdout, /Signature and comment signature verified/);
      assert.match(stdout, /file:libplugin\.so\thashed/);
    });

    it('skillplug verifies what minisign -S signed, prehashed and legacy, with minisign keys and skillplug keys', { skip: skipInterop }, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'plugin.json');
      writeFileSync(file, '{"name":"x"}');
      await run('minisign', ['-G', '-W', '-p', path.join(dir, 'm.pub'), '-s', path.join(dir, 'm.key')]);
      const theirs = parsePublicKey(readFileSync(path.join(dir, 'm.pub'), 'utf8'));
      await run('minisign', ['-S', '-s', path.join(dir, 'm.key'), '-m', file, '-x', path.join(dir, 'hashed.minisig')]);
      await run('minisign', ['-S', '-l', '-s', path.join(dir, 'm.key'), '-m', file, '-x', path.join(dir, 'legacy.minisig')]);
      const bytes = readFileSync(file);
      assert.equal(verifyBytes(bytes, readFileSync(path.join(dir, 'hashed.minisig'), 'utf8'), [theirs]).legacy, false);
      assert.equal(verifyBytes(bytes, readFileSync(path.join(dir, 'legacy.minisig'), 'utf8'), [theirs]).legacy, true);
      // minisign signs with a key skillplug generated, and skillplug signs with a key minisign generated.
      writeFileSync(path.join(dir, 'ours.key'), pair.secretKeyText);
      await run('minisign', ['-S', '-s', path.join(dir, 'ours.key'), '-m', file, '-x', path.join(dir, 'ours.minisig')]);
      assert.equal(verifyBytes(bytes, readFileSync(path.join(dir, 'ours.minisig'), 'utf8'), [pub]).keyId, pair.keyId);
      const theirSecret = parseSecretKey(readFileSync(path.join(dir, 'm.key'), 'utf8'));
      writeFileSync(`${file}.minisig`, signBytes(bytes, 'plugin.json', theirSecret));
      await run('minisign', ['-V', '-m', file, '-p', path.join(dir, 'm.pub')]);
    });

    it('minisign -V rejects a skillplug signature over tampered bytes', { skip: skipInterop }, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'lib.so');
      writeFileSync(`${file}.minisig`, signBytes(data, 'lib.so', secret));
      writeFileSync(file, 'tampered');
      writeFileSync(path.join(dir, 'k.pub'), pair.publicKeyText);
      await assert.rejects(run('minisign', ['-V', '-m', file, '-p', path.join(dir, 'k.pub')]));
    });
  });
});
