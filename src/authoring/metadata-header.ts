import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The header the C template includes: plugin.json's text as `static const char vtcode_plugin_metadata_json[]`. */
export const METADATA_HEADER = 'plugin_meta.h';

/**
 * plugin.json's text as a C header, byte for byte what the template Makefile's rule writes (so
 * `make` and `skillplug build` agree): each line a string literal with `\`, `"` and `?` (trigraphs)
 * escaped, carriage returns dropped. No line continuations, so a file without a final newline
 * still makes valid C.
 */
export function metadataHeader(manifestText: string): string {
  const literal = (line: string): string => `  "${line.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\?/g, '\\?')}\\n"`;
  const lines = manifestText.replace(/\r/g, '').split('\n');
  const last = lines.pop() as string;
  const body = lines.map((line) => `${literal(line)}\n`).join('') + (last === '' ? '' : literal(last));
  return `/* Generated from plugin.json by \`make\` or \`skillplug build\`: edit plugin.json, not this file. */\nstatic const char vtcode_plugin_metadata_json[] =\n${body}  "";\n`;
}

/**
 * Writes `plugin_meta.h` from plugin.json in a C project whose sources include it; returns whether
 * it did. The file is left alone when its content is already right, so make sees nothing new.
 */
export async function writeMetadataHeader(dir: string, manifestText: string): Promise<boolean> {
  const sources = (await readdir(dir)).filter((f) => /\.(c|h|cc|cpp)$/.test(f) && f !== METADATA_HEADER);
  let wanted = false;
  for (const file of sources) {
    const text = await readFile(path.join(dir, file), 'utf8').catch(() => '');
    if (/#\s*include\s*"plugin_meta\.h"/.test(text)) wanted = true;
  }
  if (!wanted) return false;
  const target = path.join(dir, METADATA_HEADER);
  const content = metadataHeader(manifestText);
  if ((await readFile(target, 'utf8').catch(() => undefined)) === content) return true;
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, content);
  await rename(temp, target);
  return true;
}
