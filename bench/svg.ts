// A horizontal bar chart (log scale) of per-call latency, idle and beside the busy neighbour, as a self-contained SVG.

/** One row: its median latency idle and busy, µs. */
export interface Bar {
  label: string;
  idle: number;
  busy: number;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const label = (v: number): string => (v < 1 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));

/** Renders serial µs/call per way of calling a plugin, two bars each (idle, busy), on a log scale. */
export function renderChart(bars: Bar[], caption: string): string {
  const width = 900;
  const labelWidth = 360;
  const barHeight = 11;
  const gap = 10;
  const top = 56;
  const plot = width - labelWidth - 90;
  const values = bars.flatMap((b) => [b.idle, b.busy]).filter((v) => Number.isFinite(v) && v > 0);
  const min = Math.min(...values) / 2;
  const max = Math.max(...values) * 1.5;
  const x = (v: number): number => (Math.log10(v / min) / Math.log10(max / min)) * plot;
  const height = top + bars.length * (2 * barHeight + gap) + 40;
  const rows = bars.map((b, i) => {
    const y = top + i * (2 * barHeight + gap);
    const ours = b.label.startsWith('skillplug') || b.label.startsWith('MCP');
    const bar = (v: number, dy: number, fill: string): string => {
      if (!Number.isFinite(v) || v <= 0) return '';
      const w = Math.max(2, x(v));
      return `<rect x="${labelWidth}" y="${y + dy}" width="${w.toFixed(1)}" height="${barHeight}" fill="${fill}"/><text x="${labelWidth + w + 6}" y="${y + dy + 9}" font-size="10">${label(v)} µs</text>`;
    };
    return [
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escapeXml(b.label)}</text>`,
      bar(b.idle, 0, ours ? '#2563eb' : '#9ca3af'),
      bar(b.busy, barHeight, ours ? '#93c5fd' : '#d1d5db'),
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Serial latency per call, trivial plugin (µs, log scale, lower is better)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" font-size="11">upper bar: idle; lower, lighter bar: beside a neighbour process spinning on one core</text>`,
    ...rows,
    `<text x="${width / 2}" y="${height - 14}" text-anchor="middle" font-size="10" fill="#555">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
