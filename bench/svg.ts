// A horizontal bar chart (log scale) of per-call latency, as a self-contained SVG.

/** One bar. */
export interface Bar {
  label: string;
  value: number;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders serial µs/call per way of calling a plugin, on a log scale. */
export function renderChart(bars: Bar[], caption: string): string {
  const width = 860;
  const labelWidth = 300;
  const barHeight = 22;
  const gap = 8;
  const top = 40;
  const plot = width - labelWidth - 90;
  const min = Math.min(...bars.map((b) => b.value)) / 2;
  const max = Math.max(...bars.map((b) => b.value)) * 1.5;
  const x = (v: number): number => (Math.log10(v / min) / Math.log10(max / min)) * plot;
  const height = top + bars.length * (barHeight + gap) + 40;
  const rows = bars.map((b, i) => {
    const y = top + i * (barHeight + gap);
    const w = Math.max(2, x(b.value));
    const ours = b.label.startsWith('skillplug');
    return [
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escapeXml(b.label)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${ours ? '#2563eb' : '#9ca3af'}"/>`,
      `<text x="${labelWidth + w + 6}" y="${y + 15}" font-size="12">${b.value < 1 ? b.value.toFixed(2) : b.value < 100 ? b.value.toFixed(1) : b.value.toFixed(0)} µs</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Serial latency per call, trivial plugin (µs, log scale, lower is better)</text>`,
    ...rows,
    `<text x="${width / 2}" y="${height - 14}" text-anchor="middle" font-size="10" fill="#555">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
