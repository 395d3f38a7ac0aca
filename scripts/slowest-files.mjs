// A test reporter that prints, after the run, the test files that took longest: CI shows only the
// tail of its log, and a slow run must say where its time went.
const SHOWN = 12;

export default async function* slowestFiles(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const ms = event.data.details?.duration_ms ?? 0;
      perFile.set(event.data.file, (perFile.get(event.data.file) ?? 0) + ms);
    }
  }
  const rows = [...perFile].sort((a, b) => b[1] - a[1]).slice(0, SHOWN);
  const total = [...perFile.values()].reduce((sum, ms) => sum + ms, 0);
  yield `# slowest test files (sum of their top-level tests; ${perFile.size} files, ${(total / 1000).toFixed(0)} s in all):\n`;
  for (const [file, ms] of rows) yield `#   ${(ms / 1000).toFixed(1).padStart(7)} s  ${file.replace(/^.*\/build\/test\//, '')}\n`;
}
