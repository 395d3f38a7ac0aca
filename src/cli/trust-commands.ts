import { existsSync } from 'node:fs';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readConfigFile, userConfigPath, writeConfigFile } from '../config/index.js';
import { ErrorCode, PluginError } from '../errors.js';
import { MANIFEST_FILE, findLibrary, readManifest } from '../manifest/index.js';
import { lockKey, sha256, writeLockWithDigest, type LockEntry } from '../signing/lock.js';
import { generateKeyPair, parsePublicKey } from '../signing/minisign.js';
import { checkPluginTrust, signPluginFiles } from '../signing/plugin-signatures.js';
import { STATEMENT_FILE, writeStatement } from '../signing/statement.js';
import { loaderFromFlags, type LoaderFlags } from './commands.js';
import { ExitCode, writeOut } from './output.js';
import { permissionLines, permissionsJson } from './permission-commands.js';
import type { PluginLoader } from '../loader/index.js';
import type { DiscoveredPlugin } from '../discovery/index.js';

/** What each plugin asks for, for the output of trust and lock: the user sees it before it may load. */
function requests(loader: PluginLoader, plugins: DiscoveredPlugin[]): { json: Record<string, unknown>[]; lines: string[] } {
  const json: Record<string, unknown>[] = [];
  const lines: string[] = [];
  for (const p of plugins) {
    if (!p.manifest) continue;
    const report = loader.permissionReport(p.path, p.manifest);
    json.push({ name: p.manifest.name, path: p.path, ...permissionsJson(report) });
    lines.push(`  ${p.manifest.name}:`, ...permissionLines(p.manifest.name, report, '    '));
  }
  return { json, lines };
}

/** `skillplug keygen --out PREFIX` */
export async function keygenCommand(prefix: string | undefined, flags: { force?: boolean; json?: boolean }): Promise<number> {
  if (!prefix) throw new PluginError(ErrorCode.USAGE, '"skillplug keygen" needs --out PREFIX (writes PREFIX.pub and PREFIX.key).');
  const pub = `${prefix}.pub`;
  const key = `${prefix}.key`;
  for (const file of [pub, key]) {
    if (existsSync(file) && !flags.force) throw new PluginError(ErrorCode.USAGE, `${file} already exists; pass --force to overwrite it.`, { path: file });
  }
  const pair = generateKeyPair();
  await writeFile(key, pair.secretKeyText, { mode: 0o600 });
  await writeFile(pub, pair.publicKeyText);
  if (flags.json) await writeOut(`${JSON.stringify({ key_id: pair.keyId, public_key: path.resolve(pub), secret_key: path.resolve(key) })}\n`);
  else await writeOut(`Key ${pair.keyId}\n  public: ${path.resolve(pub)} (share it; trust it with --trusted-key)\n  secret: ${path.resolve(key)} (keep it private; it is not password-protected)\n`);
  return ExitCode.OK;
}

/** A plugin dir named by path, or by name through the trusted dirs. */
async function pluginFiles(ref: string, flags: LoaderFlags): Promise<{ dir: string; name: string; version: string; manifestPath: string; libraryPath: string }> {
  let dir: string;
  if (existsSync(ref) && (ref.includes('/') || ref.startsWith('.') || existsSync(path.join(ref, MANIFEST_FILE)))) dir = await realpath(ref);
  else dir = (await loaderFromFlags(flags).findPlugin(ref)).path;
  const reading = await readManifest(dir);
  if (!reading.manifest) {
    throw new PluginError(ErrorCode.INVALID_MANIFEST, reading.issues.map((i) => i.message).join(' '), { path: dir, data: { issues: reading.issues } });
  }
  const lookup = await findLibrary(dir, reading.manifest.name);
  if (!lookup.found) throw new PluginError(ErrorCode.INVALID_STRUCTURE, lookup.issue.message, { path: dir, ...(lookup.issue.data ? { data: lookup.issue.data } : {}) });
  return { dir, name: reading.manifest.name, version: reading.manifest.version, manifestPath: path.join(dir, MANIFEST_FILE), libraryPath: lookup.path };
}

/** `skillplug sign PLUGIN --key FILE` */
export async function signCommand(ref: string, flags: LoaderFlags & { key?: string; json?: boolean }): Promise<number> {
  if (!flags.key) throw new PluginError(ErrorCode.USAGE, '"skillplug sign" needs --key FILE (a minisign secret key).');
  const files = await pluginFiles(ref, flags);
  const written = await signPluginFiles(files.manifestPath, files.libraryPath, flags.key);
  if (flags.json) await writeOut(`${JSON.stringify({ plugin: files.name, signatures: written })}\n`);
  else await writeOut(`Signed plugin "${files.name}":\n${written.map((w) => `  ${w}`).join('\n')}\n`);
  return ExitCode.OK;
}

/** `skillplug verify PLUGIN --pubkey FILE` */
export async function verifyCommand(ref: string, flags: LoaderFlags & { pubkey?: string[]; json?: boolean }): Promise<number> {
  if (!flags.pubkey || flags.pubkey.length === 0) throw new PluginError(ErrorCode.USAGE, '"skillplug verify" needs --pubkey FILE (a minisign public key).');
  const keys = await Promise.all(
    flags.pubkey.map(async (file) => {
      try {
        return parsePublicKey(await readFile(file, 'utf8'));
      } catch (err) {
        if (err instanceof PluginError) throw new PluginError(ErrorCode.USAGE, `${file}: ${err.message}`, { path: file });
        throw new PluginError(ErrorCode.USAGE, `Cannot read the public key ${file} (${(err as NodeJS.ErrnoException).code}).`, { path: file });
      }
    }),
  );
  const files = await pluginFiles(ref, flags);
  const status = await checkPluginTrust(
    { ...files, manifestBytes: await readFile(files.manifestPath), libraryBytes: await readFile(files.libraryPath) },
    keys,
    true,
  );
  const unbound =
    status.statement.state === 'absent'
      ? `no ${STATEMENT_FILE}`
      : status.statement.state === 'unsigned'
        ? `${STATEMENT_FILE} is not signed`
        : status.statement.state === 'unknown-key'
          ? `${STATEMENT_FILE} is signed by key ${status.statement.keyId}, not one given with --pubkey`
          : undefined;
  if (flags.json) await writeOut(`${JSON.stringify({ plugin: files.name, version: files.version, verified: true, bound: status.bound, key_ids: status.keyIds, ...(unbound ? { not_bound_because: unbound } : {}) })}\n`);
  else if (status.bound) await writeOut(`Plugin "${files.name}" ${files.version}: signed ${STATEMENT_FILE} verified (key ${status.keyIds.join(', ')}); it binds the name, the version and every file.\n`);
  else {
    await writeOut(
      `Plugin "${files.name}": plugin.json and library signatures verified (key ${status.keyIds.join(', ')}), but they are not bound (${unbound}): each file verifies on its own, so files of different releases would too. "skillplug sign" writes a signed ${STATEMENT_FILE} that binds them.\n`,
    );
  }
  return ExitCode.OK;
}

/** `skillplug statement PLUGIN`: writes the unsigned statement, for signing with the stock `minisign -Sm`. */
export async function statementCommand(ref: string, flags: LoaderFlags & { json?: boolean }): Promise<number> {
  const files = await pluginFiles(ref, flags);
  const file = writeStatement(files.dir, files.name, files.version);
  if (flags.json) await writeOut(`${JSON.stringify({ plugin: files.name, statement: file })}\n`);
  else await writeOut(`Wrote ${file}. Sign it with "minisign -Sm ${file}" (or run "skillplug sign").\n`);
  return ExitCode.OK;
}

// The trust is already recorded: a workspace whose plugins cannot be listed still shows that, just without requests.
async function workspaceRequests(dir: string): Promise<ReturnType<typeof requests>> {
  try {
    const loader = loaderFromFlags({ workspace: dir });
    return requests(loader, (await loader.discoverPlugins()).filter((p) => p.trustedDir.kind === 'workspace'));
  } catch {
    return { json: [], lines: [] };
  }
}

/** `skillplug trust [DIR]` and `skillplug untrust [DIR]` */
export async function trustCommand(dirArg: string | undefined, trust: boolean, flags: { json?: boolean }): Promise<number> {
  const target = path.resolve(dirArg ?? process.cwd());
  let dir: string;
  try {
    dir = await realpath(target);
  } catch {
    throw new PluginError(ErrorCode.NOT_FOUND, `${target} does not exist.`, { path: target });
  }
  const file = userConfigPath(os.homedir());
  const config = readConfigFile(file);
  const list = new Set(config.trusted_workspaces ?? []);
  const changed = trust ? !list.has(dir) : list.has(dir);
  if (trust) list.add(dir);
  else list.delete(dir);
  config.trusted_workspaces = [...list].sort();
  if (changed) writeConfigFile(file, config);
  const verb = trust ? 'trusted' : 'not trusted';
  const asked = trust ? await workspaceRequests(dir) : { json: [], lines: [] };
  if (flags.json) await writeOut(`${JSON.stringify({ workspace: dir, trusted: trust, changed, config: file, ...(trust ? { permissions: asked.json } : {}) })}\n`);
  else {
    const what = asked.lines.length > 0 ? `\nIts plugins ask for:\n${asked.lines.join('\n')}\n` : '';
    await writeOut(`${dir} is ${changed ? 'now' : 'already'} ${verb}${trust ? ': plugins in its .vtcode/plugins and .agents/plugins may load' : ''} (${file}).\n${what}`);
  }
  return ExitCode.OK;
}

/** `skillplug lock [--workspace DIR]` */
export async function lockCommand(flags: LoaderFlags & { json?: boolean }): Promise<number> {
  const loader = loaderFromFlags(flags);
  const plugins = (await loader.discoverPlugins()).filter((p) => p.manifest && p.libraryPath);
  const entries: LockEntry[] = await Promise.all(
    plugins.map(async (p) => ({
      name: p.name as string,
      version: p.version as string,
      path: lockKey(p.path, loader.workspace),
      manifest_sha256: sha256(await readFile(path.join(p.path, MANIFEST_FILE))),
      library_sha256: sha256(await readFile(p.libraryPath as string)),
    })),
  );
  const { file, sha256: digest } = writeLockWithDigest(loader.workspace, entries);
  // Recorded in the user's own config: a lock that arrived with the repository is then not the user's.
  const configFile = userConfigPath(os.homedir());
  const config = readConfigFile(configFile);
  config.pinned_locks = { ...(config.pinned_locks ?? {}), [loader.workspace]: digest };
  writeConfigFile(configFile, config);
  const asked = requests(loader, plugins);
  if (flags.json) await writeOut(`${JSON.stringify({ lock: file, plugins: entries, permissions: asked.json })}\n`);
  else {
    const what = asked.lines.length > 0 ? `They ask for:\n${asked.lines.join('\n')}\n` : '';
    await writeOut(`Locked ${entries.length} plugin${entries.length === 1 ? '' : 's'} in ${file}:\n${entries.map((e) => `  ${e.name} ${e.version}  ${e.path}`).join('\n')}\n${what}`);
  }
  return ExitCode.OK;
}
