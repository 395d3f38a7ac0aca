import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, PluginError } from '../errors.js';
import { packageRoot } from '../toolchain.js';
import { PLUGIN_NAME_PATTERN } from '../manifest/index.js';

/** Languages `skillplug new` can scaffold. */
export type PluginLanguage = 'c' | 'rust';

/** Options for {@link scaffoldPlugin}. */
export interface ScaffoldOptions {
  name: string;
  lang: PluginLanguage;
  /** Parent directory of the new project. Default: the current directory. */
  dir?: string;
  description?: string;
}

// Names cargo refuses for a package: they clash with Rust's own crates.
const RESERVED_CRATE_NAMES = new Set(['alloc', 'core', 'proc_macro', 'proc-macro', 'std', 'test']);

/** Why cargo would refuse this plugin name as a crate name, or undefined when it builds. */
function rustCrateNameProblem(name: string): string | undefined {
  if (/^[0-9]/.test(name)) return 'a Rust crate name cannot start with a digit';
  if (RESERVED_CRATE_NAMES.has(name)) return `"${name}" is the name of one of Rust's own crates`;
  return undefined;
}

const cString = (s: string): string => JSON.stringify(JSON.stringify(s).slice(1, -1)).slice(1, -1);
const rustString = (s: string): string => JSON.stringify(s).slice(1, -1);
const jsonString = (s: string): string => JSON.stringify(s).slice(1, -1);

/**
 * Writes a plugin project that builds with one command (`make` or `cargo build --release`) and
 * then validates as is. The SDK is vendored into the project so it builds anywhere, offline.
 */
export async function scaffoldPlugin(options: ScaffoldOptions): Promise<{ dir: string; files: string[] }> {
  const { name, lang } = options;
  if (!PLUGIN_NAME_PATTERN.test(name)) {
    throw new PluginError(ErrorCode.USAGE, `${JSON.stringify(name)} is not a valid plugin name: use letters, digits, "_", ".", "+" and "-", not starting with "." or "-".`);
  }
  if (lang !== 'c' && lang !== 'rust') throw new PluginError(ErrorCode.USAGE, `--lang must be c or rust, not ${JSON.stringify(lang)}.`);
  if (lang === 'rust') {
    const problem = rustCrateNameProblem(name);
    if (problem) throw new PluginError(ErrorCode.USAGE, `${JSON.stringify(name)} cannot be a Rust plugin's name: ${problem}. Choose another name, or --lang c.`, { data: { name } });
  }
  const dir = path.resolve(options.dir ?? process.cwd(), name);
  if (await stat(dir).then(() => true, () => false)) {
    throw new PluginError(ErrorCode.USAGE, `${dir} already exists; choose another name or --dir.`, { path: dir });
  }
  const description = options.description ?? `The ${name} skill.`;
  const values: Record<string, string> = {
    name,
    crate: name.replace(/[^A-Za-z0-9_-]/g, '_'),
    // What cargo names the cdylib: the crate name with "-" as "_".
    lib_crate: name.replace(/[^A-Za-z0-9_]/g, '_'),
    description: jsonString(description),
    description_c: cString(description),
    description_rust: rustString(description),
  };
  const root = packageRoot();
  const templateDir = path.join(root, 'templates', lang);
  const files: string[] = [];
  const copyTemplates = async (from: string, to: string): Promise<void> => {
    await mkdir(to, { recursive: true });
    for (const entry of await readdir(from, { withFileTypes: true })) {
      const source = path.join(from, entry.name);
      // npm drops files named .gitignore from packages, so the template ships without the dot.
      const target = path.join(to, entry.name === 'gitignore' ? '.gitignore' : entry.name);
      if (entry.isDirectory()) await copyTemplates(source, target);
      else {
        const text = (await readFile(source, 'utf8')).replace(/\{\{(\w+)\}\}/g, (all, key: string) => values[key] ?? all);
        await writeFile(target, text);
        files.push(path.relative(dir, target));
      }
    }
  };
  await copyTemplates(templateDir, dir);
  if (lang === 'c') {
    await mkdir(path.join(dir, 'include'));
    await cp(path.join(root, 'sdk', 'c', 'vtcode_plugin.h'), path.join(dir, 'include', 'vtcode_plugin.h'));
    files.push(path.join('include', 'vtcode_plugin.h'));
  } else {
    const sdk = path.join(dir, 'vtcode-plugin-sdk');
    await mkdir(path.join(sdk, 'src'), { recursive: true });
    await cp(path.join(root, 'sdk', 'rust', 'Cargo.toml'), path.join(sdk, 'Cargo.toml'));
    await cp(path.join(root, 'sdk', 'rust', 'src'), path.join(sdk, 'src'), { recursive: true });
    files.push('vtcode-plugin-sdk/');
  }
  return { dir, files: files.sort() };
}
