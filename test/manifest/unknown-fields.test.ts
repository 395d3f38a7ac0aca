// Unknown plugin.json fields: named, with the field the author most likely meant.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildPlugin } from '../../src/authoring/build.js';
import { KNOWN_MANIFEST_FIELDS, KNOWN_PERMISSION_KEYS, suggestField, unknownFieldWarnings } from '../../src/manifest/unknown-fields.js';
import { FIXTURES_DIR, tempDir } from '../helpers/fixtures.js';

describe('unknown plugin.json fields', () => {
  it('suggests the snake_case field for camelCase, kebab-case and small typos; nothing for a stranger', () => {
    assert.equal(suggestField('inputSchema', KNOWN_MANIFEST_FIELDS), 'input_schema');
    assert.equal(suggestField('output-schema', KNOWN_MANIFEST_FIELDS), 'output_schema');
    assert.equal(suggestField('whenToUse', KNOWN_MANIFEST_FIELDS), 'when_to_use');
    assert.equal(suggestField('descripton', KNOWN_MANIFEST_FIELDS), 'description');
    assert.equal(suggestField('fs_reads', KNOWN_PERMISSION_KEYS), 'fs_read');
    assert.equal(suggestField('unixSockets', KNOWN_PERMISSION_KEYS), 'unix_sockets');
    assert.equal(suggestField('colour', KNOWN_MANIFEST_FIELDS), undefined);
  });

  it('leaves known fields, "$schema" and x-/_ extension fields alone', () => {
    const raw = { name: 'a', description: 'd', version: '1', abi_version: 1, thread_safe: true, $schema: 's', 'x-owner': 'me', _note: 'n', permissions: { network: true, fs_write: [] } };
    assert.deepEqual(unknownFieldWarnings(raw, 'plugin.json'), []);
  });

  it('build reports them too (and dev prints what build reports)', async () => {
    const dir = path.join(tempDir(), 'proj');
    mkdirSync(dir);
    // Not named .c: the build compiles every .c file, and this one is included by the one that names the plugin.
    copyFileSync(path.join(FIXTURES_DIR, 'echo.c'), path.join(dir, 'echo.inc'));
    copyFileSync(path.join(FIXTURES_DIR, 'fixture.h'), path.join(dir, 'fixture.h'));
    writeFileSync(path.join(dir, 'proj.c'), '#define PLUGIN_NAME "proj"\n#include "echo.inc"\n');
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'proj', description: 'd', version: '1', inputschema: {} }));
    const built = await buildPlugin({ dir });
    assert.deepEqual(built.warnings.map((w) => [w.code, w.field, w.suggestion]), [['W_UNKNOWN_FIELD', 'inputschema', 'input_schema']]);
  });
});
