import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader } from '../../src/index.js';
import { mergeSecurity, readConfigFile } from '../../src/config/index.js';
import { tempDir } from '../helpers/fixtures.js';

function configWith(value: unknown): string {
  const file = path.join(tempDir(), 'skillplug.json');
  writeFileSync(file, JSON.stringify(value));
  return file;
}

describe('per-plugin grants in the config', () => {
  it('reads plugins.NAME.grant', () => {
    const grant = { network: true, unix_sockets: true, fs_read: ['/data'], fs_write: ['${workspace}/out'] };
    assert.deepEqual(readConfigFile(configWith({ plugins: { p: { grant } } })).plugins?.p?.grant, grant);
  });

  for (const [label, grant] of [
    ['not an object', true],
    ['network not a boolean', { network: 'yes' }],
    ['unix_sockets not a boolean', { unix_sockets: 1 }],
    ['fs_read not a list of strings', { fs_read: '/' }],
    ['an empty path', { fs_write: [''] }],
    ['an unknown key (a typo would grant nothing silently)', { netwrok: true }],
  ] as const) {
    it(`refuses a grant with ${label} (E_CONFIG)`, () => {
      assert.throws(() => readConfigFile(configWith({ plugins: { p: { grant } } })), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.CONFIG);
    });
  }

  it('a workspace config can never grant: its grants are ignored with a warning naming them', () => {
    const warnings: string[] = [];
    mergeSecurity({}, { plugins: { p: { grant: { network: true } } } }, {}, (m) => warnings.push(m), '/ws/.vtcode/skillplug.json');
    assert.ok(warnings.some((w) => w.includes('plugins.p.grant')));
  });
});

describe('the loader options grant and grants', () => {
  for (const options of [{ grant: { fs_read: '/' } }, { grant: { network: 'yes' } }, { grants: { p: { fs_write: [''] } } }, { grants: [] }, { grant: { everything: true } }]) {
    it(`refuses ${JSON.stringify(options)} with E_USAGE instead of granting something else`, () => {
      assert.throws(() => new PluginLoader({ readConfig: false, defaultDirs: false, ...(options as object) }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.USAGE);
    });
  }

  it('grant, grants and the user config add up', () => {
    const home = tempDir();
    mkdirSync(path.join(home, '.vtcode'));
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ plugins: { p: { grant: { fs_read: ['/a'] } } } }));
    const loader = new PluginLoader({ home, defaultDirs: false, grant: { network: true }, grants: { p: { fs_write: ['/b'] }, q: { unix_sockets: true } } });
    assert.deepEqual(loader.grantFor('p'), { network: true, unix_sockets: false, fs_read: ['/a'], fs_write: ['/b'] });
  });
});
