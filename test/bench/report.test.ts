// The published figures are the bench's own: README's section and docs/bench.md render exactly from bench/last-run.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type BenchResult, OTHER_WORK_LIMIT_CORES, renderFull, renderReadme } from '../../bench/report.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

describe('benchmark report', () => {
  const run = JSON.parse(readFileSync(path.join(REPO_ROOT, 'bench', 'last-run.json'), 'utf8')) as BenchResult;

  it('README and docs/bench.md carry exactly what the kept run renders to, so no figure is typed by hand', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /<!-- bench:start -->\n([\s\S]*)<!-- bench:end -->/.exec(readme)?.[1];
    assert.equal(section, renderReadme(run));
    assert.ok(readFileSync(path.join(REPO_ROOT, 'docs', 'bench.md'), 'utf8').endsWith(renderFull(run)));
  });

  it('says which machine and load the figures come from', () => {
    const text = renderReadme(run);
    for (const fact of [run.machine.cpuModel, `${run.machine.cores} cores`, run.machine.kernel, run.machine.node]) assert.ok(text.includes(fact), fact);
    assert.match(text, /\*\*Idle\*\* rows ran beside [\d.]+ cores of other work/);
    assert.match(text, /Holds only on an idle machine/);
  });

  it('warns when processes it did not start loaded the machine beside its rows, and only then', () => {
    const loaded = structuredClone(run);
    for (const row of loaded.rows) for (const sample of row.idle) sample.otherCores = 1.04;
    const warned = renderReadme(loaded);
    assert.match(warned, /\*\*Warning: not the load this run claims\.\*\* .*1\.04 cores beside the idle rows/);
    assert.doesNotMatch(warned, /beside the busy rows/);
    assert.ok(renderFull(loaded).includes('**Warning: not the load this run claims.**'));
    // The kept run was measured on a quiet machine.
    assert.ok(!renderReadme(run).includes('Warning: not the load'), `other work stayed under ${OTHER_WORK_LIMIT_CORES} cores`);
  });
});
