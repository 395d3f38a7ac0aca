// `skillplug validate`: errors make a plugin invalid; warnings say where VT Code would differ.
import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

interface Report {
  valid: boolean;
  errors: { code: string; field?: string }[];
  warnings: { code: string; message: string; field?: string }[];
  metadata?: { name: string };
  call?: { success: boolean };
}

const validate = async (dir: string, ...flags: string[]): Promise<{ code: number; report: Report; stderr: string }> => {
  const r = await runCli(['validate', dir, '--json', ...flags]);
  return { code: r.code, report: JSON.parse(r.stdout || '{}') as Report, stderr: r.stderr };
};
const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, description: 'd', version: '1.0.0', abi_version: 1, ...extra });

describe('validate warnings (VT Code compatibility)', () => {
  let parent: string;
  const dirs: Record<string, string> = {};

  before(async () => {
    parent = tempDir();
    const specs: [string, Parameters<typeof buildFixture>[1]][] = [
      ['clean', { source: 'echo', name: 'clean', manifest: manifest('clean') }],
      ['noabi', { source: 'echo', name: 'noabi', manifest: { name: 'noabi', description: 'd', version: '1.0.0' } }],
      ['badabi', { source: 'echo', name: 'badabi', manifest: manifest('badabi', { abi_version: '1' }) }],
      ['threads', { source: 'echo', name: 'threads', manifest: manifest('threads', { thread_safe: 'yes' }) }],
      ['upper', { source: 'echo', name: 'Upper_Name', dirName: 'upper', manifest: manifest('Upper_Name') }],
      ['cargo', { source: 'echo', name: 'cargo-named', dirName: 'cargo', libraryFile: 'libcargo_named.so', manifest: manifest('cargo-named') }],
      ['scalar', { source: 'scalar_output', name: 'scalar', manifest: manifest('scalar') }],
      ['abi2', { source: 'abi_mismatch', name: 'abi2', manifest: manifest('abi2') }],
      ['typos', { source: 'echo', name: 'typos', manifest: manifest('typos', { inputSchema: { type: 'object' }, colour: 'red', 'x-team': 'tools', permissions: { network: false, fsRead: ['/data'] } }) }],
    ];
    await Promise.all(specs.map(async ([key, spec]) => (dirs[key] = await buildFixture(parent, spec))));
  });

  const codes = (r: Report) => r.warnings.map((w) => w.code);

  it('a plugin VT Code reads exactly as skillplug does gets no warnings', async () => {
    const { code, report } = await validate(dirs.clean as string);
    assert.equal(code, 0);
    assert.deepEqual(report, { valid: true, errors: [], warnings: [] });
  });

  it('warns, without failing, about plugin.json that VT Code’s listing skips', async () => {
    for (const [key, field] of [['noabi', 'abi_version'], ['badabi', 'abi_version']] as const) {
      const { code, report } = await validate(dirs[key] as string);
      assert.equal(code, 0, key);
      assert.equal(report.valid, true);
      assert.deepEqual(report.warnings.map((w) => [w.code, w.field]), [['W_VTCODE_ABI_VERSION', field]]);
    }
    const threads = (await validate(dirs.threads as string)).report;
    assert.deepEqual(threads.warnings.map((w) => [w.code, w.field]), [['W_VTCODE_METADATA', 'thread_safe']]);
  });

  it('warns about a name outside VT Code’s rule', async () => {
    const { report } = await validate(dirs.upper as string);
    assert.equal(report.valid, true);
    assert.deepEqual(report.warnings.map((w) => [w.code, w.field]), [['W_VTCODE_NAME', 'name']]);
  });

  it('warns about a library only skillplug’s extra names find, and not once it is renamed', async () => {
    const dir = dirs.cargo as string;
    assert.deepEqual(codes((await validate(dir)).report), ['W_VTCODE_LIBRARY_NAME']);
    renameSync(path.join(dir, 'libcargo_named.so'), path.join(dir, 'libcargo-named.so'));
    assert.deepEqual(codes((await validate(dir)).report), []);
  });

  it('shows warnings in the human output too, and still says valid', async () => {
    const r = await runCli(['validate', dirs.noabi as string]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /valid/);
    assert.match(r.stdout, /W_VTCODE_ABI_VERSION/);
  });

  it('--deep reads the metadata in the isolated host; --input makes one call and warns when output is not an object', async () => {
    const deep = await validate(dirs.scalar as string, '--deep');
    assert.equal(deep.code, 0, deep.stderr);
    assert.equal(deep.report.metadata?.name, 'scalar');
    assert.deepEqual(codes(deep.report), []);
    const called = await validate(dirs.scalar as string, '--deep', '--input', '{}');
    assert.equal(called.code, 0, called.stderr);
    assert.deepEqual(called.report.call, { success: true });
    assert.deepEqual(called.report.warnings.map((w) => [w.code, w.field]), [['W_VTCODE_OUTPUT', 'output']]);
    const clean = await validate(dirs.clean as string, '--deep', '--input', '{}');
    assert.deepEqual(codes(clean.report), []);
  });

  it('--deep turns what only loading reveals into an error (here an ABI mismatch)', async () => {
    const shallow = await validate(dirs.abi2 as string);
    assert.equal(shallow.report.valid, true, 'the files alone look fine');
    const deep = await validate(dirs.abi2 as string, '--deep');
    assert.equal(deep.code, 1);
    assert.deepEqual(deep.report.errors.map((e) => e.code), ['E_ABI_MISMATCH']);
  });

  it('warns about unknown plugin.json fields and permissions keys, suggesting the name meant', async () => {
    const { code, report } = await validate(dirs.typos as string);
    assert.equal(code, 0, 'a warning never makes the plugin invalid');
    assert.equal(report.valid, true);
    const unknown = report.warnings.filter((w) => w.code === 'W_UNKNOWN_FIELD').map((w) => [w.field, (w as { suggestion?: string }).suggestion ?? null]);
    assert.deepEqual(unknown, [
      ['inputSchema', 'input_schema'],
      ['colour', null],
      ['permissions.fsRead', 'fs_read'],
    ]);
    const human = await runCli(['validate', dirs.typos as string]);
    assert.match(human.stdout, /warning \[W_UNKNOWN_FIELD\] \(inputSchema\)/);
  });

  it('--input without --deep is a usage error', async () => {
    const r = await runCli(['validate', dirs.clean as string, '--input', '{}']);
    assert.equal(r.code, 2);
  });
});
