import os from 'node:os';
import path from 'node:path';
import { readConfigFile, userConfigPath, writeConfigFile } from '../config/index.js';
import { readErrorCode, readSmallRegularFileSync } from '../safe-read.js';
import { ErrorCode, PluginError } from '../errors.js';
import { formatKeyId, parsePublicKey, parseSecretKey, type MinisignPublicKey } from '../signing/minisign.js';
import { loadTrustedKeys } from '../signing/plugin-signatures.js';
import { ExitCode, escapeTerminal, writeOut } from './output.js';

/** One `trusted_keys` entry of the user config and the key it names, or why it names none. */
interface TrustedKeyEntry {
  entry: string;
  source: 'inline' | 'file';
  keyId?: string;
  problem?: string;
}

const KEY_ID = /^[0-9A-Fa-f]{16}$/;

function describeEntries(entries: readonly string[]): TrustedKeyEntry[] {
  return entries.map((entry) => {
    const source = /^RW[A-Za-z0-9+/]{54}$/.test(entry.trim()) || entry.includes('untrusted comment:') ? 'inline' : 'file';
    try {
      const key = loadTrustedKeys([entry])[0] as MinisignPublicKey;
      return { entry, source, keyId: formatKeyId(key.keyId) };
    } catch (err) {
      return { entry, source, problem: (err as Error).message };
    }
  });
}

/** Reads a minisign public key file; `E_USAGE` naming the file when it is anything else. */
function readPublicKeyFile(file: string): { keyId: string; line: string } {
  let text: string;
  try {
    text = readSmallRegularFileSync(file).toString('utf8');
  } catch (err) {
    throw new PluginError(ErrorCode.USAGE, `Cannot read the key file ${file} (${readErrorCode(err)}). Pass the path of a minisign public key (.pub), e.g. one "skillplug keygen" wrote.`, { path: file });
  }
  try {
    const key = parsePublicKey(text);
    return { keyId: formatKeyId(key.keyId), line: Buffer.concat([Buffer.from('Ed'), key.keyId, key.raw]).toString('base64') };
  } catch (err) {
    const isSecret = (() => {
      try {
        parseSecretKey(text);
        return true;
      } catch {
        return false;
      }
    })();
    if (isSecret) {
      throw new PluginError(ErrorCode.USAGE, `${file} is a secret key: trust its public half (the .pub file beside it) and keep this one private.`, { path: file, data: { reason: 'secret-key' } });
    }
    throw new PluginError(ErrorCode.USAGE, `${file} is not a minisign public key (${(err as Error).message}). Pass a .pub file, e.g. one "skillplug keygen" wrote.`, { path: file, data: { reason: 'not-a-public-key' } });
  }
}

/** `skillplug keys trust FILE` / `keys list` / `keys untrust KEYID|FILE`: the user config's `trusted_keys`. */
export async function keysCommand(args: string[], flags: { json?: boolean }): Promise<number> {
  const [action, target, ...extra] = args;
  const usage = '"skillplug keys" takes: trust FILE, list, or untrust KEYID|FILE.';
  if (action === undefined || !['trust', 'list', 'untrust'].includes(action)) throw new PluginError(ErrorCode.USAGE, `${action === undefined ? 'A keys command is missing' : `Unknown keys command ${JSON.stringify(action)}`}. ${usage}`);
  if (extra.length > 0 || (action === 'list' ? target !== undefined : target === undefined)) throw new PluginError(ErrorCode.USAGE, usage);
  const file = userConfigPath(os.homedir());
  const config = readConfigFile(file);
  const entries = describeEntries(config.trusted_keys ?? []);
  if (action === 'list') {
    if (flags.json) {
      await writeOut(`${JSON.stringify({ config: file, keys: entries.map((e) => ({ key_id: e.keyId ?? null, source: e.source, entry: e.entry, ...(e.problem ? { problem: e.problem } : {}) })) })}\n`);
    } else if (entries.length === 0) {
      await writeOut(`No trusted keys in ${file}. Add one with "skillplug keys trust FILE.pub".\n`);
    } else {
      const lines = entries.map((e) => {
        const where = e.source === 'file' ? ` (file ${escapeTerminal(e.entry)})` : '';
        return e.keyId ? `  ${e.keyId}${where}` : `  unusable entry ${escapeTerminal(JSON.stringify(e.entry))}: ${escapeTerminal(e.problem ?? '')}`;
      });
      await writeOut(`Trusted keys (${file}):\n${lines.join('\n')}\n`);
    }
    return ExitCode.OK;
  }
  const wanted = target as string;
  if (action === 'trust') {
    const key = readPublicKeyFile(wanted);
    const changed = !entries.some((e) => e.keyId === key.keyId);
    // The key itself, not the file's path: moving or replacing the file later changes nothing.
    if (changed) {
      config.trusted_keys = [...(config.trusted_keys ?? []), key.line];
      writeConfigFile(file, config);
    }
    if (flags.json) await writeOut(`${JSON.stringify({ key_id: key.keyId, trusted: true, changed, config: file })}\n`);
    else await writeOut(`Key ${key.keyId} is ${changed ? 'now' : 'already'} trusted (${file}): plugins it signs load where signatures are required.\n`);
    return ExitCode.OK;
  }
  const keyId = KEY_ID.test(wanted) ? wanted.toUpperCase() : readPublicKeyFile(wanted).keyId;
  const kept = entries.filter((e) => e.keyId !== keyId);
  if (kept.length === entries.length) {
    const known = entries.flatMap((e) => (e.keyId ? [e.keyId] : []));
    throw new PluginError(ErrorCode.NOT_FOUND, `Key ${keyId} is not trusted in ${file}. ${known.length > 0 ? `Trusted: ${known.join(', ')}.` : 'No key is trusted.'}`, { path: file, data: { key_id: keyId, known } });
  }
  config.trusted_keys = kept.map((e) => e.entry);
  writeConfigFile(file, config);
  if (flags.json) await writeOut(`${JSON.stringify({ key_id: keyId, trusted: false, removed: entries.length - kept.length, config: file })}\n`);
  else await writeOut(`Key ${keyId} is no longer trusted (${path.resolve(file)}).\n`);
  return ExitCode.OK;
}
