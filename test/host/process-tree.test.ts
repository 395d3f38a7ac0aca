import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TreeRss, processTree } from '../../src/host/process-tree.js';

const linux = process.platform === 'linux';

function vmRssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]);
}

describe('TreeRss', { skip: !linux && 'reads /proc' }, () => {
  it('sums the resident memory of a process and its children, and says null once the root is gone', async () => {
    // The shell prints once its child runs, so the tree is whole before the first read.
    const shell = spawn('sh', ['-c', 'sleep 1000 & echo started; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await once(shell.stdout, 'data');
    const root = shell.pid as number;
    const probe = new TreeRss(root, 64);
    try {
      const tree = processTree(root);
      assert.equal(tree.length, 2, 'the shell and its sleep');
      // "started" can come before the forked child has exec'd sleep, whose memory then changes under the reads.
      const comm = (): string => readFileSync(`/proc/${tree[1]}/comm`, 'latin1').trim();
      for (let turns = 0; comm() !== 'sleep'; turns++) {
        assert.ok(turns < 100_000, 'the child never became sleep');
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Even as sleep, the child's loader may still be mapping libraries: compare only a probe that two
      // equal status sums bracket, so the tree held still while it was read.
      const statusKb = (): number => tree.reduce((sum, pid) => sum + vmRssKb(pid), 0);
      let kb: number;
      let expected: number;
      for (let turns = 0; ; turns++) {
        const before = statusKb();
        kb = probe.kb() as number;
        expected = statusKb();
        if (before === expected) break;
        assert.ok(turns < 100_000, 'the tree never held still');
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(Math.abs(kb - expected) <= expected / 10, `probe ${kb} KiB vs status ${expected} KiB`);
      assert.ok(kb > vmRssKb(root), 'the child is counted too');
      const exited = once(shell, 'exit');
      process.kill(tree[1] as number, 'SIGKILL');
      await exited;
      assert.equal(probe.kb(), null);
    } finally {
      probe.close();
      shell.kill('SIGKILL');
    }
  });
});
