import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Why no library was found, as far as the files in the plugin dir tell. */
export type MissingLibraryReason = 'cargo-debug-build' | 'rlib-crate-type' | 'cargo-not-built' | 'name-mismatch' | 'build-dir' | 'not-built';

/** What was looked at, what is there instead, and the fix. */
export interface MissingLibraryDiagnosis {
  reason: MissingLibraryReason;
  /** Files found that explain it (relative to the plugin dir). */
  found: string[];
  /** One sentence: what is there and what to do. */
  hint: string;
}

const LIBRARY_FILE = /\.(so|dylib|dll)$/;
// A plugin dir is small; a build tree may not be, so each listing stops early.
const MAX_ENTRIES = 2000;

function list(dir: string): string[] {
  try {
    return readdirSync(dir).slice(0, MAX_ENTRIES);
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function libraries(dir: string, base: string): string[] {
  return list(path.join(base, dir))
    .filter((f) => LIBRARY_FILE.test(f))
    .map((f) => path.join(dir, f))
    .sort();
}

// Cargo.toml's [lib] crate-type, read loosely: a missing or rlib-only crate-type builds no shared library.
function cargoCrateTypes(dir: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'Cargo.toml'), 'utf8');
  } catch {
    return undefined;
  }
  const types = /^\s*crate-type\s*=\s*\[([^\]]*)\]/m.exec(text)?.[1];
  return types === undefined ? [] : [...types.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string);
}

/**
 * Looks at what a plugin dir holds when its library is missing and says why: a cargo debug build, a
 * crate that builds no cdylib, a library named after something else, one left in build/, or no build yet.
 * `expected` is the library file name the plugin's name calls for.
 */
export function diagnoseMissingLibrary(dir: string, expected: string): MissingLibraryDiagnosis | undefined {
  const cargo = isDir(path.join(dir, 'target')) || list(dir).includes('Cargo.toml');
  if (cargo) {
    const debug = libraries(path.join('target', 'debug'), dir);
    if (debug.length > 0) {
      return { reason: 'cargo-debug-build', found: debug, hint: `${debug.join(', ')} is a debug build; skillplug looks in target/release: build with "cargo build --release" (or "skillplug build").` };
    }
    const types = cargoCrateTypes(dir);
    const rlibs = [path.join('target', 'release'), path.join('target', 'debug')].flatMap((sub) => list(path.join(dir, sub)).filter((f) => f.endsWith('.rlib')).map((f) => path.join(sub, f)));
    if ((types !== undefined && !types.includes('cdylib')) || rlibs.length > 0) {
      return {
        reason: 'rlib-crate-type',
        found: rlibs.length > 0 ? rlibs : ['Cargo.toml'],
        hint: `the crate builds ${rlibs.length > 0 ? `only a Rust library (${rlibs.join(', ')})` : 'no shared library'}: set crate-type = ["cdylib"] under [lib] in Cargo.toml, then "cargo build --release".`,
      };
    }
  }
  // Any library here was not one of the names tried (the lookup would have found it): it is named after something else.
  const elsewhere = [...libraries('.', dir), ...libraries(path.join('target', 'release'), dir)];
  if (elsewhere.length > 0) {
    return {
      reason: 'name-mismatch',
      found: elsewhere,
      hint: `found ${elsewhere.join(', ')}, named after something else: plugin.json's name calls for ${expected}. Rename the library or change "name" (a Rust crate's library is named after the crate, with "-" as "_").`,
    };
  }
  const buildDirs = ['build', 'out', path.join('build', 'lib'), path.join('build', 'release')].filter((d) => isDir(path.join(dir, d)));
  if (buildDirs.length > 0) {
    const built = buildDirs.flatMap((d) => libraries(d, dir));
    return {
      reason: 'build-dir',
      found: built.length > 0 ? built : buildDirs,
      hint: built.length > 0 ? `the library is in ${built.join(', ')}: copy it into the plugin dir as ${expected} (or run "skillplug build", which lays the plugin out).` : `${buildDirs.join(', ')} holds no library: build the plugin, then copy the library into the plugin dir as ${expected}.`,
    };
  }
  if (cargo) return { reason: 'cargo-not-built', found: ['Cargo.toml'], hint: 'nothing is built yet: run "cargo build --release" (or "skillplug build").' };
  const makefile = list(dir).includes('Makefile');
  if (makefile || list(dir).some((f) => f.endsWith('.c'))) {
    return { reason: 'not-built', found: makefile ? ['Makefile'] : [], hint: `nothing is built yet: run ${makefile ? '"make"' : '"skillplug build"'}.` };
  }
  return undefined;
}
