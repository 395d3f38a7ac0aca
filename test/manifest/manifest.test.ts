import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, libraryCandidates, validatePluginStructure } from '../../src/index.js';
import { MAX_MANIFEST_BYTES } from '../../src/manifest/index.js';
import { MAX_SCHEMA_NODES } from '../../src/manifest/schema.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';

function pluginDir(manifest: string | null, library?: string): string {
  const dir = path.join(tempDir(), 'p');
  mkdirSync(dir);
  if (manifest !== null) writeFileSync(path.join(dir, 'plugin.json'), manifest);
  if (library) writeFileSync(path.join(dir, library), 'not really a library');
  return dir;
}

describe('validatePluginStructure', () => {
  it('accepts a complete plugin', async () => {
    const dir = await buildFixture(tempDir(), { source: 'echo', name: 'good' });
    assert.deepEqual(await validatePluginStructure(dir), []);
  });

  it('reports a missing plugin.json', async () => {
    const issues = await validatePluginStructure(pluginDir(null, 'libx.so'));
    assert.equal(issues[0]?.code, ErrorCode.INVALID_MANIFEST);
    assert.equal(issues[0]?.field, undefined);
  });

  it('reports plugin.json that is not JSON', async () => {
    const issues = await validatePluginStructure(pluginDir('{"name": "x",', 'libx.so'));
    assert.equal(issues[0]?.code, ErrorCode.INVALID_MANIFEST);
  });

  it('reports plugin.json that is not an object', async () => {
    const issues = await validatePluginStructure(pluginDir('[1,2]'));
    assert.equal(issues[0]?.code, ErrorCode.INVALID_MANIFEST);
  });

  it('reports every problem at once, each naming its field', async () => {
    const issues = await validatePluginStructure(pluginDir(JSON.stringify({ name: 'x', description: 7, author: 3 })));
    const byField = Object.fromEntries(issues.map((i) => [i.field ?? '(none)', i.code]));
    assert.deepEqual(byField, {
      description: ErrorCode.INVALID_MANIFEST,
      version: ErrorCode.INVALID_MANIFEST,
      author: ErrorCode.INVALID_MANIFEST,
      '(none)': ErrorCode.INVALID_STRUCTURE,
    });
  });

  it('reports wrong types of required fields', async () => {
    const issues = await validatePluginStructure(pluginDir(JSON.stringify({ name: 1, description: 'd', version: 2 }), 'lib1.so'));
    assert.deepEqual(issues.filter((i) => i.code === ErrorCode.INVALID_MANIFEST).map((i) => i.field).sort(), ['name', 'version']);
  });

  it('refuses names that could escape the directory', async () => {
    const issues = await validatePluginStructure(pluginDir(JSON.stringify({ name: '../evil', description: 'd', version: '1' })));
    assert.equal(issues[0]?.field, 'name');
  });

  it('reports a missing library, naming every file tried', async () => {
    const issues = await validatePluginStructure(pluginDir(JSON.stringify({ name: 'my-tool', description: 'd', version: '1' })));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.code, ErrorCode.INVALID_STRUCTURE);
    for (const candidate of libraryCandidates('my-tool')) assert.ok(issues[0]?.message.includes(candidate), candidate);
  });

  it('checks declared permissions', async () => {
    const issues = await validatePluginStructure(
      pluginDir(JSON.stringify({ name: 'x', description: 'd', version: '1', permissions: { network: 'yes', unix_sockets: 1, fs_write: [''] } }), 'libx.so'),
    );
    assert.deepEqual(issues.map((i) => i.field).sort(), ['permissions.fs_write', 'permissions.network', 'permissions.unix_sockets']);
  });

  it('reads a plugin.json larger than one read buffer, and refuses one over the limit unread', async () => {
    const long = { name: 'x', description: 'd'.repeat(200 * 1024), version: '1' };
    assert.deepEqual(await validatePluginStructure(pluginDir(JSON.stringify(long), 'libx.so')), []);
    const huge = { ...long, description: 'd'.repeat(MAX_MANIFEST_BYTES) };
    const issues = await validatePluginStructure(pluginDir(JSON.stringify(huge), 'libx.so'));
    assert.equal(issues[0]?.code, ErrorCode.INVALID_MANIFEST);
  });

  it('reports a FIFO planted as plugin.json without waiting for a writer', { skip: process.platform === 'win32' ? 'Windows has no FIFOs (mkfifo)' : false }, async () => {
    const dir = pluginDir(null, 'libx.so');
    execFileSync('mkfifo', [path.join(dir, 'plugin.json')]);
    const issues = await validatePluginStructure(dir);
    assert.equal(issues[0]?.code, ErrorCode.INVALID_MANIFEST);
  });

  it('finds a library through a symlink, and reports a dangling one', async () => {
    const dir = pluginDir(JSON.stringify({ name: 'x', description: 'd', version: '1' }), 'real.so');
    symlinkSync('real.so', path.join(dir, 'libx.so'));
    assert.deepEqual(await validatePluginStructure(dir), []);
    const dangling = pluginDir(JSON.stringify({ name: 'x', description: 'd', version: '1' }));
    symlinkSync('gone.so', path.join(dangling, 'libx.so'));
    const issues = await validatePluginStructure(dangling);
    assert.equal(issues[0]?.code, ErrorCode.INVALID_STRUCTURE);
  });

  it('reports a directory that does not exist', async () => {
    const issues = await validatePluginStructure(path.join(tempDir(), 'missing'));
    assert.equal(issues[0]?.code, ErrorCode.NOT_FOUND);
  });
});

describe('libraryCandidates', () => {
  it('tries the canonical name, then without lib, then the Cargo name', () => {
    assert.deepEqual(libraryCandidates('my-plugin', 'linux'), ['libmy-plugin.so', 'my-plugin.so', 'libmy_plugin.so', 'my_plugin.so']);
    assert.deepEqual(libraryCandidates('tool', 'darwin'), ['libtool.dylib', 'tool.dylib']);
    assert.deepEqual(libraryCandidates('my-plugin', 'win32'), ['my-plugin.dll', 'libmy-plugin.dll', 'my_plugin.dll', 'libmy_plugin.dll']);
  });
});

describe('plugin.json bounds and MCP tool schema rules', () => {
  const base = { name: 'x', description: 'd', version: '1' };
  const codes = async (manifest: unknown): Promise<[string, string | undefined][]> =>
    (await validatePluginStructure(pluginDir(typeof manifest === 'string' ? manifest : JSON.stringify(manifest), 'libx.so'))).map((i) => [i.code, i.field]);

  it('refuses a ~1 MiB plugin.json unread (the old limit let it be parsed on every discovery)', async () => {
    const big = { ...base, input_schema: { type: 'object', description: 'd'.repeat(1024 * 1024) } };
    assert.deepEqual((await codes(big))[0], [ErrorCode.INVALID_MANIFEST, undefined]);
  });

  it('refuses a value nested 10,000 levels deep inside input_schema, without throwing', async () => {
    // Written as text: JSON.stringify itself overflows on such a value, which is the point.
    const deep = `{"name":"x","description":"d","version":"1","input_schema":{"type":"object","properties":{"a":${'{"v":'.repeat(10_000)}1${'}'.repeat(10_000)}}}}`;
    assert.deepEqual((await codes(deep))[0], [ErrorCode.INVALID_MANIFEST, undefined]);
  });

  it('refuses a tool schema with more nodes than MAX_SCHEMA_NODES before compiling it', async () => {
    const properties = Object.fromEntries(Array.from({ length: MAX_SCHEMA_NODES }, (_, i) => [`p${i}`, { type: 'string' }]));
    assert.deepEqual(await codes({ ...base, input_schema: { type: 'object', properties } }), [[ErrorCode.INVALID_MANIFEST, 'input_schema']]);
  });

  it('requires what MCP clients require of a tool schema: type "object" and object property schemas', async () => {
    assert.deepEqual(await codes({ ...base, input_schema: { properties: { q: { type: 'string' } } } }), [[ErrorCode.INVALID_MANIFEST, 'input_schema']]);
    assert.deepEqual(await codes({ ...base, input_schema: { type: 'object', properties: { q: true } } }), [[ErrorCode.INVALID_MANIFEST, 'input_schema']]);
    assert.deepEqual(await codes({ ...base, output_schema: { type: 'array' } }), [[ErrorCode.INVALID_MANIFEST, 'output_schema']]);
    assert.deepEqual(await codes({ ...base, input_schema: { type: 'object', properties: { q: { type: 'string' } } } }), []);
  });
});
