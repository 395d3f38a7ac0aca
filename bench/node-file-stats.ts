// A pure-Node equivalent of examples/file-stats, the alternative a user would write instead.
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const LANGUAGES: Record<string, string> = {
  rs: 'Rust', c: 'C', h: 'C', cc: 'C++', cpp: 'C++', cxx: 'C++', hpp: 'C++', hh: 'C++', hxx: 'C++',
  ts: 'TypeScript', tsx: 'TypeScript', mts: 'TypeScript', cts: 'TypeScript', js: 'JavaScript', jsx: 'JavaScript',
  mjs: 'JavaScript', cjs: 'JavaScript', py: 'Python', go: 'Go', java: 'Java', kt: 'Kotlin', kts: 'Kotlin', rb: 'Ruby',
  php: 'PHP', cs: 'C#', swift: 'Swift', sh: 'Shell', bash: 'Shell', zsh: 'Shell', md: 'Markdown', markdown: 'Markdown',
  json: 'JSON', yml: 'YAML', yaml: 'YAML', toml: 'TOML', html: 'HTML', htm: 'HTML', css: 'CSS', scss: 'CSS', less: 'CSS',
  sql: 'SQL', xml: 'XML', txt: 'Text',
};

function language(name: string): string {
  if (['Makefile', 'makefile', 'GNUmakefile'].includes(name)) return 'Makefile';
  if (name === 'Dockerfile') return 'Dockerfile';
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 'Other';
  return LANGUAGES[name.slice(dot + 1).toLowerCase()] ?? 'Other';
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Counts files and lines per language under root, as the file-stats plugin does. */
export async function nodeFileStats(root: string, includeIgnored = false): Promise<{ files: number; lines: number; bytes: number }> {
  const ignores: ((name: string) => boolean)[] = [];
  if (!includeIgnored) {
    ignores.push((n) => n === '.git' || n === 'node_modules');
    let text = '';
    try {
      text = readFileSync(path.join(root, '.gitignore'), 'utf8');
    } catch {
      // No .gitignore.
    }
    for (const raw of text.split('\n')) {
      const line = raw.trim().replace(/^\/+/, '').replace(/\/+$/, '');
      if (!line || raw.trim().startsWith('#') || raw.trim().startsWith('!') || line.includes('/')) continue;
      const re = line.includes('*') || line.includes('?') ? globToRegExp(line) : undefined;
      ignores.push(re ? (n) => re.test(n) : (n) => n === line);
    }
  }
  const byLanguage = new Map<string, { files: number; lines: number; bytes: number }>();
  const visit = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    await Promise.all(
      entries.map(async (entry) => {
        if (ignores.some((ignored) => ignored(entry.name))) return;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return visit(full);
        if (!entry.isFile()) return;
        let data: Buffer;
        try {
          data = await readFile(full);
        } catch {
          return;
        }
        const binary = data.subarray(0, 8000).includes(0);
        let lines = 0;
        if (!binary) {
          for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) lines++;
          if (data.length > 0 && data[data.length - 1] !== 10) lines++;
        }
        const lang = binary ? 'Binary' : language(entry.name);
        const tally = byLanguage.get(lang) ?? { files: 0, lines: 0, bytes: 0 };
        tally.files++;
        tally.lines += lines;
        tally.bytes += data.length;
        byLanguage.set(lang, tally);
      }),
    );
  };
  await visit(root);
  let files = 0;
  let lines = 0;
  let bytes = 0;
  for (const t of byLanguage.values()) {
    files += t.files;
    lines += t.lines;
    bytes += t.bytes;
  }
  return { files, lines, bytes };
}
