import path from 'node:path';
import { buildPlugin } from '../authoring/build.js';
import { devLoop } from '../authoring/dev.js';
import { scaffoldPlugin, type PluginLanguage } from '../authoring/scaffold.js';
import { vtcodeNameWarning } from '../manifest/vtcode.js';
import { loaderOptions, parseJsonObjectFlag, type LoaderFlags } from './commands.js';
import { ExitCode, escapeTerminal, writeErr, writeOut } from './output.js';

/** `skillplug new NAME [--lang c|rust] [--dir DIR]` */
export async function newCommand(name: string, flags: { lang?: string; dir?: string; description?: string; json?: boolean }): Promise<number> {
  const created = await scaffoldPlugin({
    name,
    lang: (flags.lang ?? 'c') as PluginLanguage,
    ...(flags.dir !== undefined ? { dir: flags.dir } : {}),
    ...(flags.description !== undefined ? { description: flags.description } : {}),
  });
  const nameWarning = vtcodeNameWarning(name, path.join(created.dir, 'plugin.json'));
  if (nameWarning) writeErr(`skillplug: warning[${nameWarning.code}]: ${nameWarning.message}`);
  if (flags.json) {
    await writeOut(`${JSON.stringify(created)}\n`);
    return ExitCode.OK;
  }
  const build = flags.lang === 'rust' ? 'cargo build --release' : 'make';
  await writeOut(
    [
      `Created ${created.dir}`,
      ...created.files.map((f) => `  ${f}`),
      '',
      'Next:',
      `  cd ${path.relative(process.cwd(), created.dir) || '.'}`,
      `  ${build}                      # builds the library; the directory is then a plugin`,
      '  skillplug validate .',
      `  skillplug dev . --input '{"text":"hello"}'   # rebuild and re-run on every save`,
      '',
    ].join('\n'),
  );
  return ExitCode.OK;
}

/** `skillplug build [DIR] [--out DIR]` */
export async function buildCommand(dir: string | undefined, flags: { out?: string; json?: boolean }): Promise<number> {
  const result = await buildPlugin({
    dir: dir ?? '.',
    ...(flags.out !== undefined ? { out: flags.out } : {}),
    onOutput: flags.json ? undefined : (text) => process.stderr.write(escapeTerminal(text, true)),
    onProgress: (ms) => writeErr(`skillplug: building… ${Math.round(ms / 1000)} s`),
  });
  if (flags.json) await writeOut(`${JSON.stringify(result)}\n`);
  else for (const w of result.warnings) writeErr(`skillplug: warning[${w.code}]: ${w.message}`);
  if (!flags.json) await writeOut(`Built ${result.name} with ${result.tool} in ${result.buildMs} ms\n  plugin dir: ${result.pluginDir}\n  library:    ${result.libraryPath}\n`);
  return ExitCode.OK;
}

/** `skillplug dev DIR [--input JSON] [--once]` */
export async function devCommand(dir: string, flags: LoaderFlags & { input?: string; once?: boolean }): Promise<number> {
  const input = flags.input === undefined ? {} : parseJsonObjectFlag(flags.input, '--input');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  return devLoop({
    dir,
    input,
    once: flags.once === true,
    loader: loaderOptions(flags),
    write: (line) => process.stdout.write(`${escapeTerminal(line, true)}\n`),
    signal: controller.signal,
  });
}
