import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { isPlainObject } from '../abi/codec.js';

const require = createRequire(import.meta.url);
const validators: { draft07?: Ajv; draft2020?: Ajv } = {};

// Each draft's compiler is loaded on first use: ajv costs tens of milliseconds at startup, and most
// runs compile no schema, or schemas of one draft only.
function ajv(draft: 'draft07' | 'draft2020'): Ajv {
  // Plugin schemas are authored by third parties: accept unknown keywords rather than refuse them.
  if (draft === 'draft07') validators.draft07 ??= new (require('ajv') as typeof import('ajv')).Ajv({ allErrors: true, strict: false });
  else validators.draft2020 ??= new (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020({ allErrors: true, strict: false });
  return validators[draft] as Ajv;
}

/** A compiled schema, or why it does not compile. */
export type CompiledSchema = { ok: true; validate: ValidateFunction } | { ok: false; problem: string };

// Keyed by the schema object, so a compiled schema lives exactly as long as the manifest that holds it.
const cache = new WeakMap<object, CompiledSchema>();

/** Compiles a JSON Schema (draft-07, or 2020-12 when its `$schema` says so). */
export function compileSchema(schema: unknown): CompiledSchema {
  if (typeof schema === 'boolean') return compileSchema(schema ? {} : { not: {} });
  if (!isPlainObject(schema)) return { ok: false, problem: 'a JSON Schema must be an object' };
  const hit = cache.get(schema);
  if (hit) return hit;
  const compiler = ajv(typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? 'draft2020' : 'draft07');
  let compiled: CompiledSchema;
  try {
    compiled = { ok: true, validate: compiler.compile(schema) };
  } catch (err) {
    compiled = { ok: false, problem: (err as Error).message };
  } finally {
    // The validator keeps what it needs; ajv's own registry would otherwise hold every schema (and
    // refuse a second compile of one with the same `$id`) for the life of the process.
    compiler.removeSchema(schema);
  }
  cache.set(schema, compiled);
  return compiled;
}

/** Schemas ajv holds in its registries: its meta-schemas only, since compiled plugin schemas are removed. */
export function retainedSchemaCount(): number {
  const held = (a: Ajv | undefined): number => (a ? (a as unknown as { _cache: Map<unknown, unknown> })._cache.size : 0);
  return held(validators.draft07) + held(validators.draft2020);
}

/** Schema errors as short readable lines, e.g. `/path: must be number`. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`);
}

/** Nodes (objects, arrays and scalars) one tool schema may hold; more is refused before compiling (ajv compile time grows with it). */
export const MAX_SCHEMA_NODES = 2_000;

/**
 * Why a tool schema cannot be published as an MCP tool schema, or undefined. MCP clients reject a
 * whole tool list when one tool's schema is not `type: "object"` or has a non-object property schema.
 */
export function toolSchemaProblem(schema: Record<string, unknown>): string | undefined {
  if (schema.type !== 'object') return `its "type" must be "object" (got ${schema.type === undefined ? 'none' : JSON.stringify(schema.type)}), since tool arguments are a JSON object`;
  const properties = schema.properties;
  if (properties !== undefined) {
    if (!isPlainObject(properties)) return '"properties" must be an object';
    for (const [key, value] of Object.entries(properties)) {
      if (!isPlainObject(value)) return `the schema of property ${JSON.stringify(key)} must be an object, not ${Array.isArray(value) ? 'an array' : typeof value}`;
    }
  }
  let nodes = 0;
  const stack: unknown[] = [schema];
  while (stack.length > 0) {
    const value = stack.pop();
    if (++nodes > MAX_SCHEMA_NODES) return `it has more than ${MAX_SCHEMA_NODES} nodes; keep tool schemas small`;
    if (Array.isArray(value)) for (const v of value) stack.push(v);
    else if (isPlainObject(value)) for (const v of Object.values(value)) stack.push(v);
  }
  return undefined;
}

/** What identifies one version of plugin.json: a hash of its text. */
export type FileIdentity = string;

/**
 * What compiling a plugin.json's schemas found, remembered per file until that file changes: a
 * rediscovery compiles nothing new, and entries of plugins no longer seen are dropped.
 */
export class SchemaVerdicts {
  private readonly entries = new Map<string, { identity: FileIdentity; problems: string[] }>();

  /** Entries held (one per plugin.json judged in the last discovery). */
  get size(): number {
    return this.entries.size;
  }

  /** Problems compiling the manifest's schemas (empty when they compile), cached by `identity`. */
  judge(file: string, identity: FileIdentity, manifest: Record<string, unknown>): string[] {
    const known = this.entries.get(file);
    if (known && known.identity === identity) return known.problems;
    const problems: string[] = [];
    for (const field of ['input_schema', 'output_schema']) {
      if (manifest[field] === undefined) continue;
      const compiled = compileSchema(manifest[field]);
      if (!compiled.ok) problems.push(`${file}: "${field}" is not a valid JSON Schema: ${compiled.problem}.`);
    }
    this.entries.set(file, { identity, problems });
    return problems;
  }

  /** Drops the entries of every file not in `seen`. */
  retain(seen: ReadonlySet<string>): void {
    for (const file of this.entries.keys()) if (!seen.has(file)) this.entries.delete(file);
  }
}
