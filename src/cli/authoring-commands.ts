import path from 'node:path';
import { buildPlugin } from '../authoring/build.js';
import { devLoop } from '../authoring/dev.js';
import { scaffoldPlugin, type PluginLanguage } from '../authoring/scaffold.js';
import { ErrorCode, isPluginError } from '../errors.js';
import { vtcodeNameWarning } from '../manifest/vtcode.js';
import { loaderOptions, parseJsonObjectFlag, readInputFlag, type LoaderFlags } from './commands.js';
import { ExitCode, escapeTerminal, stdout, writeErr, writeOut } from './output.js';

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
      '  skillplug test .                  # runs tests/*.json (one passing case to start from)',
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

/** `skillplug dev DIR [--input JSON | --input-file FILE | --input -] [--config JSON] [--once]` */
export async function devCommand(dir: string, flags: LoaderFlags & { input?: string | undefined; inputFile?: string | undefined; config?: string | undefined; once?: boolean }): Promise<number> {
  const input = await readInputFlag(flags);
  const config = flags.config === undefined ? undefined : parseJsonObjectFlag(flags.config, '--config');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  return devLoop({
    dir,
    input,
    ...(config !== undefined ? { config } : {}),
    once: flags.once === true,
    loader: loaderOptions(flags),
    write: (line) => stdout().write(`${escapeTerminal(line, true)}\n`),
    notice: (line) => writeErr(`skillplug dev: ${line}`),
    signal: controller.signal,
  });
}

/** `skillplug test [DIR]`: the project's tests/*.json cases, reported as TAP. */
export async function testCommand(dir: string | undefined, flags: LoaderFlags): Promise<number> {
  const { testPlugin } = await import('../authoring/plugin-tests.js');
  const write = (line: string): void => {
    stdout().write(`${escapeTerminal(line)}\n`);
  };
  try {
    const { failed } = await testPlugin({ dir: dir ?? '.', loader: loaderOptions(flags), write, notice: (line) => writeErr(`skillplug test: ${line}`) });
    return failed === 0 ? ExitCode.OK : ExitCode.PLUGIN_FAILED;
  } catch (err) {
    // A runner reading the TAP stream sees why it stopped; the error itself follows on stderr.
    if (isPluginError(err) && err.code !== ErrorCode.USAGE) write(`Bail out! ${err.code}: ${err.message.split('\n')[0]}`);
    throw err;
  }
}
