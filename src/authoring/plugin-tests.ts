import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isPlainObject } from '../abi/codec.js';
import type { JsonObject, PluginResult } from '../abi/types.js';
import { asPluginError, ErrorCode, PluginError } from '../errors.js';
import { PluginLoader, type PluginLoaderOptions } from '../loader/index.js';
import { compileSchema } from '../manifest/schema.js';
import type { NativePluginTrait } from '../plugin/interfaces.js';
import { buildPlugin } from './build.js';
import { ownBuildLoader, unsignedBuildNotice } from './dev.js';

/** The folder of a plugin project that holds its test cases, one JSON file each. */
export const TESTS_DIR = 'tests';

/** What a case expects of its call. */
export interface CaseExpectation {
  /** Whether the result reports success. Default true (unless `code` is set). */
  success?: boolean;
  /** The exact output. */
  output?: unknown;
  /** A JSON Schema the output must satisfy. */
  schema?: Record<string, unknown> | boolean;
  /** The call must fail with this skillplug error code (e.g. `E_CRASHED`, `E_INVALID_INPUT`). */
  code?: string;
}

/** One test case, from `tests/<file>.json`. */
export interface PluginTestCase {
  /** The case file, relative to the project. */
  file: string;
  name: string;
  input: JsonObject;
  config?: JsonObject;
  expect: CaseExpectation;
}

const CASE_KEYS = new Set(['name', 'input', 'config', 'expect']);
const EXPECT_KEYS = new Set(['success', 'output', 'schema', 'code']);
const MAX_CASE_FILE_BYTES = 16 * 1024 * 1024;

function caseError(file: string, problem: string, field?: string): PluginError {
  return new PluginError(ErrorCode.USAGE, `Test case file ${file}: ${problem}. A case is {"input": {...}, "config": {...}, "expect": {"output": ... | "schema": {...} | "success": false | "code": "E_..."}}.`, {
    path: file,
    data: { file, ...(field ? { field } : {}) },
  });
}

function checkCase(raw: unknown, file: string, label: string, relative: string): PluginTestCase {
  if (!isPlainObject(raw)) throw caseError(file, `${label} must be a JSON object`);
  const unknown = Object.keys(raw).filter((k) => !CASE_KEYS.has(k));
  if (unknown.length > 0) throw caseError(file, `${label} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`, unknown[0]);
  if (raw.name !== undefined && typeof raw.name !== 'string') throw caseError(file, `${label}: "name" must be a string`, 'name');
  if (raw.input !== undefined && !isPlainObject(raw.input)) throw caseError(file, `${label}: "input" must be a JSON object`, 'input');
  if (raw.config !== undefined && !isPlainObject(raw.config)) throw caseError(file, `${label}: "config" must be a JSON object`, 'config');
  const expect = raw.expect;
  if (!isPlainObject(expect)) throw caseError(file, `${label}: "expect" must be a JSON object`, 'expect');
  const unknownExpect = Object.keys(expect).filter((k) => !EXPECT_KEYS.has(k));
  if (unknownExpect.length > 0) throw caseError(file, `${label}: "expect" has unknown field ${JSON.stringify(unknownExpect[0])}`, `expect.${unknownExpect[0]}`);
  if (Object.keys(expect).length === 0) throw caseError(file, `${label}: "expect" says nothing to check`, 'expect');
  if (expect.success !== undefined && typeof expect.success !== 'boolean') throw caseError(file, `${label}: "expect.success" must be true or false`, 'expect.success');
  if (expect.code !== undefined) {
    if (typeof expect.code !== 'string' || !/^E_[A-Z_]+$/.test(expect.code)) throw caseError(file, `${label}: "expect.code" must be an error code like "E_CRASHED"`, 'expect.code');
    if (expect.success !== undefined || expect.output !== undefined || expect.schema !== undefined) {
      throw caseError(file, `${label}: "expect.code" means the call fails with no result, so it cannot go with "success", "output" or "schema"`, 'expect.code');
    }
  }
  if (expect.schema !== undefined) {
    const compiled = compileSchema(expect.schema);
    if (!compiled.ok) throw caseError(file, `${label}: "expect.schema" is not a valid JSON Schema (${compiled.problem})`, 'expect.schema');
  }
  return {
    file: relative,
    name: typeof raw.name === 'string' ? raw.name : label === 'the case' ? relative : `${relative} ${label}`,
    input: (raw.input as JsonObject | undefined) ?? {},
    ...(raw.config !== undefined ? { config: raw.config as JsonObject } : {}),
    expect: expect as CaseExpectation,
  };
}

/**
 * Reads every `tests/*.json` of a project: each holds one case or an array of cases. Throws
 * `E_USAGE` naming the file (and `data.file`, `data.field`) for anything that is not a case.
 */
export async function readTestCases(dir: string): Promise<PluginTestCase[]> {
  const testsDir = path.join(path.resolve(dir), TESTS_DIR);
  let names: string[];
  try {
    names = (await readdir(testsDir)).filter((f) => f.endsWith('.json')).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) {
    throw new PluginError(ErrorCode.USAGE, `No test cases in ${testsDir}: add one, e.g. ${path.join(testsDir, 'basic.json')} holding {"input": {...}, "expect": {"output": {...}}}.`, { path: testsDir });
  }
  const cases: PluginTestCase[] = [];
  for (const name of names) {
    const file = path.join(testsDir, name);
    const relative = path.join(TESTS_DIR, name);
    const info = await stat(file);
    if (!info.isFile()) throw caseError(file, 'is not a regular file');
    if (info.size > MAX_CASE_FILE_BYTES) throw caseError(file, `is ${info.size} bytes, over the ${MAX_CASE_FILE_BYTES}-byte limit`);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw caseError(file, `is not valid JSON (${(err as Error).message})`);
    }
    if (Array.isArray(raw)) {
      if (raw.length === 0) throw caseError(file, 'holds an empty array');
      cases.push(...raw.map((item, i) => checkCase(item, file, `case #${i + 1}`, relative)));
    } else cases.push(checkCase(raw, file, 'the case', relative));
  }
  return cases;
}

/** How one case went: undefined when it passed, else why not (and what was seen). */
export type CaseFailure = { message: string; expected?: unknown; actual?: unknown };

/** Judges one call against a case's expectation. */
export function judgeCase(expect: CaseExpectation, outcome: { result: PluginResult } | { error: PluginError }): CaseFailure | undefined {
  if ('error' in outcome) {
    const { code, message } = outcome.error;
    if (expect.code === code) return undefined;
    return { message: expect.code ? `failed with ${code}, expected ${expect.code}` : `the call failed with ${code}`, ...(expect.code ? { expected: expect.code } : {}), actual: `${code}: ${message}` };
  }
  const { result } = outcome;
  if (expect.code) return { message: `the call returned a result, expected it to fail with ${expect.code}`, expected: expect.code, actual: result };
  const success = expect.success ?? true;
  if (result.success !== success) return { message: `success is ${result.success}, expected ${success}`, expected: success, actual: result.success ? result.output : result.error };
  if (expect.output !== undefined && !isDeepStrictEqual(result.output, expect.output)) return { message: 'the output differs', expected: expect.output, actual: result.output };
  if (expect.schema !== undefined) {
    const compiled = compileSchema(expect.schema);
    if (compiled.ok && !compiled.validate(result.output)) {
      const problems = (compiled.validate.errors ?? []).map((e) => `${e.instancePath || '(output)'} ${e.message ?? ''}`.trim());
      return { message: `the output does not match the schema: ${problems.join('; ')}`, actual: result.output };
    }
  }
  return undefined;
}

/** Options for {@link testPlugin}. */
export interface PluginTestOptions {
  /** A plugin project (built first, like `dev`) or an already built plugin dir (no build files). */
  dir: string;
  /** Loader options (isolation, sandbox, timeout, trust…). */
  loader?: PluginLoaderOptions;
  /** Receives the report, one TAP line at a time. */
  write: (line: string) => void;
  /** Where notices about policy go. Default: `write` as a TAP comment. */
  notice?: (line: string) => void;
}

async function hasBuildFiles(dir: string): Promise<boolean> {
  const entries = await readdir(dir);
  return entries.includes('Cargo.toml') || entries.includes('Makefile') || entries.some((f) => f.endsWith('.c'));
}

// A value on one line of a TAP YAML block: JSON strings are valid YAML scalars.
const yaml = (value: unknown): string => (value === undefined ? 'null' : JSON.stringify(value));

/**
 * Runs a plugin against its `tests/*.json` cases in the isolated host and reports TAP version 13.
 * Resolves with the failed count (0: all passed). Throws for bad case files (`E_USAGE`) and for a
 * plugin that does not build or load.
 */
export async function testPlugin(options: PluginTestOptions): Promise<{ passed: number; failed: number }> {
  const dir = path.resolve(options.dir);
  const cases = await readTestCases(dir);
  let loader: PluginLoader;
  let pluginDir: string;
  if (await hasBuildFiles(dir)) {
    const built = await buildPlugin({ dir, out: path.join(dir, 'dist') });
    loader = ownBuildLoader(built, options.loader);
    pluginDir = built.pluginDir;
    if (loader.security.requireSignature) (options.notice ?? ((line) => options.write(`# ${line}`)))(unsignedBuildNotice(built));
  } else {
    loader = new PluginLoader({ defaultDirs: false, ...options.loader, pluginsDirs: [path.dirname(dir)] });
    pluginDir = dir;
  }
  options.write('TAP version 13');
  let plugin: NativePluginTrait | undefined = await loader.loadPlugin(pluginDir);
  options.write(`# ${plugin.metadata.name} ${plugin.metadata.version} (${pluginDir})`);
  options.write(`1..${cases.length}`);
  let passed = 0;
  try {
    for (const [i, c] of cases.entries()) {
      plugin ??= await loader.loadPlugin(pluginDir);
      let outcome: { result: PluginResult } | { error: PluginError };
      try {
        outcome = { result: await plugin.execute({ input: c.input, workspace_root: loader.workspace, config: c.config ?? loader.pluginConfig(plugin.metadata.name) }) };
      } catch (err) {
        outcome = { error: asPluginError(err, ErrorCode.INTERNAL, `running ${c.file}`) };
        // A crash, hang or limit leaves the next case a fresh host, so one case never fails another.
        await plugin.close().catch(() => undefined);
        plugin = undefined;
      }
      const failure = judgeCase(c.expect, outcome);
      // TAP reads "# SKIP" / "# TODO" after a description as a directive; a name is only a name.
      const description = c.name.replace(/\\/g, '\\\\').replace(/#/g, '\\#');
      if (!failure) {
        passed++;
        options.write(`ok ${i + 1} - ${description}`);
        continue;
      }
      options.write(`not ok ${i + 1} - ${description}`);
      options.write('  ---');
      options.write(`  message: ${yaml(failure.message)}`);
      options.write(`  file: ${yaml(c.file)}`);
      if ('expected' in failure) options.write(`  expected: ${yaml(failure.expected)}`);
      if ('actual' in failure) options.write(`  actual: ${yaml(failure.actual)}`);
      options.write('  ...');
    }
  } finally {
    await plugin?.close();
  }
  const failed = cases.length - passed;
  options.write(`# pass ${passed}`);
  options.write(`# fail ${failed}`);
  return { passed, failed };
}
