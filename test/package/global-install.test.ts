// README's Install section, done for real: `npm pack`, then `npm install -g --prefix` of the tarball
// from local files only (a registry on 127.0.0.1 serving this checkout's node_modules), then the
// installed binary on a fresh HOME: --version, list, install of a plugin and an MCP handshake.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { REPO_ROOT, buildFixture, tempDir } from '../helpers/fixtures.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { parseToml } from '../helpers/toml.js';

const run = promisify(execFile);

/**
 * Why dist/ is not what `npm run build` makes of src/ now: a source newer than its output, an output
 * missing, or an output whose source is gone (tsc never deletes one). Empty when it is.
 */
function staleDist(): string[] {
  const src = path.join(REPO_ROOT, 'src');
  const dist = path.join(REPO_ROOT, 'dist');
  if (!existsSync(dist)) return ['there is no dist/'];
  const found: string[] = [];
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
    const output = path.join(dist, file.replace(/\.ts$/, '.js'));
    if (!existsSync(output)) found.push(`dist/${path.relative(dist, output)} is missing`);
    else if (statSync(path.join(src, file)).mtimeMs > statSync(output).mtimeMs) found.push(`src/${file} is newer than its output`);
  }
  for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    if (file.endsWith('.js') && !existsSync(path.join(src, file.replace(/\.js$/, '.ts')))) found.push(`dist/${file} has no source in src/ any more (rm -rf dist first)`);
  }
  return found;
}

describe('the packed package, installed globally into a fresh prefix', () => {
  let registry: LocalRegistry;
  let bin: string;
  let installedRoot: string;
  let home: string;
  let cache: string;
  let workspace: string;
  let env: Record<string, string>;

  before(async () => {
    // npm pack ships dist/ as it is; rebuilding it here would rewrite files that tests beside this one may read.
    const stale = staleDist();
    if (stale.length > 0) throw new Error(`dist/ is stale, so the package would hold old code: run \`npm run build\` first (${stale.slice(0, 3).join('; ')}${stale.length > 3 ? `; ${stale.length - 3} more` : ''})`);
    const work = tempDir('skillplug-pack-');
    registry = await startLocalRegistry(work);
    // --ignore-scripts keeps `prepare` from rebuilding the examples.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
    const tarball = path.join(work, (JSON.parse(stdout) as { filename: string }[])[0]?.filename as string);
    const prefix = path.join(work, 'prefix');
    home = path.join(work, 'home');
    cache = path.join(work, 'cache');
    workspace = tempDir('skillplug-pack-ws-');
    const npmEnv = { ...(process.env as Record<string, string>), npm_config_registry: registry.url, npm_config_cache: path.join(work, 'npm-cache'), npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    await run('npm', ['install', '-g', '--prefix', prefix, tarball], { env: npmEnv, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
    bin = path.join(prefix, 'bin', 'skillplug');
    installedRoot = path.join(prefix, 'lib', 'node_modules', 'skillplug');
    env = { ...(process.env as Record<string, string>), HOME: home, XDG_CACHE_HOME: cache };
    delete env.SKILLPLUG_CACHE_DIR;
    for (const variable of ['VTCODE_HOME', 'VTCODE_DATA', 'XDG_DATA_HOME', 'CODEX_HOME']) delete env[variable];
  });

  after(async () => {
    await registry?.close();
  });

  it('installs a bin that reports the package version, without the examples', async () => {
    const { stdout } = await run(bin, ['--version'], { env });
    const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(stdout.trim(), version);
    assert.equal(existsSync(path.join(installedRoot, '.vtcode')), false, 'no built example plugins are shipped');
    assert.ok(existsSync(path.join(installedRoot, 'src', 'host', 'skillplug-host.c')));
    assert.deepEqual(registry.misses, [], 'every dependency came from the local registry');
  });

  it('lists the user and workspace plugin dirs of a fresh HOME', async () => {
    const { stdout } = await run(bin, ['list', '--json', '--workspace', workspace], { env });
    const listing = JSON.parse(stdout) as { trusted_dirs: string[]; plugins: unknown[] };
    assert.ok(listing.trusted_dirs.includes(path.join(home, '.vtcode', 'plugins')));
    assert.deepEqual(listing.plugins, []);
  });

  it('installs a plugin and serves it over MCP, compiling its host from the shipped C source on first use', async () => {
    const plugin = await buildFixture(tempDir('skillplug-pack-plugin-'), { source: 'echo', name: 'echo-installed' });
    await run(bin, ['install', plugin], { env });
    const transport = new StdioClientTransport({ command: bin, args: ['serve', '--workspace', workspace], env, stderr: 'pipe' });
    const client = new Client({ name: 'global-install-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name), ['echo-installed']);
      const result = await client.callTool({ name: 'echo-installed', arguments: { text: 'hi' } });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    } finally {
      await client.close();
    }
    assert.ok(readdirSync(path.join(cache, 'skillplug')).length > 0, 'the host was built into the fresh cache');
  });

  it("starts from PATH with each config file in docs/integration.md, as the client would", async () => {
    const docs = readFileSync(path.join(REPO_ROOT, 'docs', 'integration.md'), 'utf8');
    const blocks = [...docs.matchAll(/<!-- snippet: mcp-config (\S+) -->\n```(json|toml)\n([\s\S]*?)\n```/g)];
    assert.ok(blocks.length >= 5, 'the config-file recipes are found');
    const onPath = { ...env, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH ?? ''}` };
    for (const [, clientName, lang, text] of blocks) {
      const doc = (lang === 'toml' ? parseToml(text as string) : JSON.parse(text as string)) as Record<string, Record<string, unknown>>;
      const entry = (doc.mcp?.providers as Record<string, unknown>[] | undefined)?.[0] ?? Object.values(doc.mcp_servers ?? doc.servers ?? doc.mcpServers ?? {})[0];
      const { command, args } = entry as { command: string; args: string[] };
      const transport = new StdioClientTransport({
        command,
        args: args.map((a) => (a === '/path/to/repo' || a === '${workspaceFolder}' ? workspace : a)),
        env: onPath,
        stderr: 'pipe',
      });
      const client = new Client({ name: `installed-${clientName}`, version: '1.0.0' });
      await client.connect(transport);
      try {
        assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['echo-installed'], clientName);
      } finally {
        await client.close();
      }
    }
  });
});
