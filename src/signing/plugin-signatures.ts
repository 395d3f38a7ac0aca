import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readErrorCode, readSmallRegularFileSync } from '../safe-read.js';
import { ErrorCode, PluginError } from '../errors.js';
import { SIGNATURE_SUFFIX } from './files.js';
import { parsePublicKey, parseSecretKey, signBytes, verifyBytes, type MinisignPublicKey } from './minisign.js';
import { STATEMENT_FILE, checkStatement, writeStatement, type StatementStatus } from './statement.js';


/** True when a trusted-key entry is a key itself rather than a path to a .pub file. */
function isInlineKey(entry: string): boolean {
  return entry.includes('untrusted comment:') || /^RW[A-Za-z0-9+/]{54}$/.test(entry.trim());
}

/** Reads trusted keys given as .pub file paths or inline keys. Throws `E_CONFIG` naming the bad entry. */
export function loadTrustedKeys(entries: readonly string[]): MinisignPublicKey[] {
  return entries.map((entry) => {
    let text = entry;
    if (!isInlineKey(entry)) {
      try {
        text = readSmallRegularFileSync(entry).toString('utf8');
      } catch (err) {
        throw new PluginError(ErrorCode.CONFIG, `Cannot read the trusted key file ${entry} (${readErrorCode(err)}). Pass the path of a minisign .pub file.`, { path: entry });
      }
    }
    try {
      return parsePublicKey(text);
    } catch (err) {
      throw new PluginError(ErrorCode.CONFIG, `The trusted key ${isInlineKey(entry) ? JSON.stringify(`${entry.slice(0, 20)}…`) : entry} is not a minisign public key: ${(err as Error).message}`, { path: entry });
    }
  });
}

/** A plugin's two signed files, read once. */
export interface PluginFileBytes {
  manifestPath: string;
  manifestBytes: Buffer;
  /** The library's path inside the plugin dir (its signature sits beside it). */
  libraryPath: string;
  libraryBytes: Buffer;
}

/** The outcome of checking a plugin's signatures. */
export interface SignatureStatus {
  /** Both files carry signatures that verify against a trusted key. */
  signed: boolean;
  /** Key ids that signed, as minisign prints them. */
  keyIds: string[];
  /** Signatures present but made by keys not trusted here (only when signatures are not required). */
  unknownKeys: string[];
}

/**
 * Checks the signatures beside plugin.json and the library. A signature that is present but does
 * not verify always fails with `E_SIGNATURE`; with `requireSignature`, so does a missing one or one
 * by a key that is not trusted.
 */
export async function checkPluginSignatures(files: PluginFileBytes, keys: readonly MinisignPublicKey[], requireSignature: boolean, plugin: string, dir: string): Promise<SignatureStatus> {
  const status: SignatureStatus = { signed: true, keyIds: [], unknownKeys: [] };
  for (const [file, bytes] of [
    [files.manifestPath, files.manifestBytes],
    [files.libraryPath, files.libraryBytes],
  ] as const) {
    const sigFile = `${file}${SIGNATURE_SUFFIX}`;
    let sigText: string;
    try {
      sigText = readSmallRegularFileSync(sigFile).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin}" (${dir}): ${sigFile} cannot be read (${readErrorCode(err)}). Make it the regular file minisign writes, or remove it.`, {
          plugin,
          path: sigFile,
          data: { reason: 'unreadable', file: path.basename(file) },
        });
      }
      status.signed = false;
      if (requireSignature) {
        throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin}" (${dir}) is not signed: ${sigFile} is missing, and signatures are required. Sign it with "skillplug sign" using a key you trust.`, {
          plugin,
          path: file,
          data: { reason: 'unsigned', file: path.basename(file) },
        });
      }
      continue;
    }
    try {
      const verified = verifyBytes(bytes, sigText, keys);
      if (!status.keyIds.includes(verified.keyId)) status.keyIds.push(verified.keyId);
    } catch (err) {
      const e = err as PluginError;
      const reason = e.data?.reason;
      if (reason === 'unknown-key' && !requireSignature) {
        status.signed = false;
        status.unknownKeys.push(String(e.data?.keyId));
        continue;
      }
      throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin}" (${dir}): ${path.basename(sigFile)} does not verify: ${e.message}`, {
        plugin,
        path: file,
        data: { ...(e.data ?? {}), file: path.basename(file) },
      });
    }
  }
  return status;
}

/** What a plugin's signatures establish. */
export interface PluginTrust extends SignatureStatus {
  /** A statement signed by a trusted key binds name, version and every file, and they all match. */
  bound: boolean;
}

/**
 * Checks a plugin's signed statement, then its per-file signatures. With `requireSignature`, a bound
 * statement or verifying signatures on both plugin.json and the library are needed (`E_SIGNATURE`
 * otherwise); anything signed that does not verify or match is always refused.
 */
export async function checkPluginTrust(
  files: PluginFileBytes & { dir: string; name: string; version: string },
  keys: readonly MinisignPublicKey[],
  requireSignature: boolean,
): Promise<PluginTrust & { statement: StatementStatus }> {
  const relative = (f: string): string => path.relative(files.dir, f).split(path.sep).join('/');
  const statement = checkStatement(
    {
      dir: files.dir,
      name: files.name,
      version: files.version,
      known: new Map([
        [relative(files.manifestPath), files.manifestBytes],
        [relative(files.libraryPath), files.libraryBytes],
      ]),
    },
    keys,
  );
  const bound = statement.state === 'bound';
  const perFile = await checkPluginSignatures(files, keys, requireSignature && !bound, files.name, files.dir);
  if (statement.state === 'unknown-key' && !perFile.unknownKeys.includes(statement.keyId)) perFile.unknownKeys.push(statement.keyId);
  if (bound && !perFile.keyIds.includes(statement.keyId)) perFile.keyIds.push(statement.keyId);
  return { ...perFile, signed: bound || perFile.signed, bound, statement };
}

/**
 * Signs plugin.json and the library with a minisign secret key file, then writes and signs the
 * statement binding the plugin's name, version and every file; returns the paths written.
 */
export async function signPluginFiles(manifestPath: string, libraryPath: string, secretKeyFile: string): Promise<string[]> {
  let keyText: string;
  try {
    keyText = await readFile(secretKeyFile, 'utf8');
  } catch (err) {
    throw new PluginError(ErrorCode.USAGE, `Cannot read the secret key ${secretKeyFile} (${(err as NodeJS.ErrnoException).code}).`, { path: secretKeyFile });
  }
  const key = parseSecretKey(keyText);
  const written: string[] = [];
  for (const file of [manifestPath, libraryPath]) {
    const sigFile = `${file}${SIGNATURE_SUFFIX}`;
    await writeFile(sigFile, signBytes(await readFile(file), path.basename(file), key));
    written.push(sigFile);
  }
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { name?: unknown; version?: unknown };
  if (typeof manifest.name !== 'string' || typeof manifest.version !== 'string') {
    throw new PluginError(ErrorCode.INVALID_MANIFEST, `${manifestPath} needs a string "name" and "version" to be signed.`, { path: manifestPath });
  }
  const statementFile = writeStatement(path.dirname(manifestPath), manifest.name, manifest.version);
  await writeFile(`${statementFile}${SIGNATURE_SUFFIX}`, signBytes(await readFile(statementFile), STATEMENT_FILE, key));
  written.push(statementFile, `${statementFile}${SIGNATURE_SUFFIX}`);
  return written;
}
