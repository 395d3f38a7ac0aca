import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, PluginError } from '../../src/index.js';
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
