import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { isPlainObject } from '../abi/codec.js';

const require = createRequire(import.meta.url);
let validators: { draft07: Ajv; draft2020: Ajv } | undefined;

// Loaded on first use: ajv costs tens of milliseconds at startup and most runs compile no schema.
function ajv(): { draft07: Ajv; draft2020: Ajv } {
  if (!validators) {
    const { Ajv: Draft07 } = require('ajv') as typeof import('ajv');
    const { Ajv2020 } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
    // Plugin schemas are authored by third parties: accept unknown keywords rather than refuse them.
    validators = { draft07: new Draft07({ allErrors: true, strict: false }), draft2020: new Ajv2020({ allErrors: true, strict: false }) };
  }
  return validators;
}

/** A compiled schema, or why it does not compile. */
export type CompiledSchema = { ok: true; validate: ValidateFunction } | { ok: false; problem: string };

const cache = new WeakMap<object, CompiledSchema>();

/** Compiles a JSON Schema (draft-07, or 2020-12 when its `$schema` says so). */
export function compileSchema(schema: unknown): CompiledSchema {
  if (typeof schema === 'boolean') return compileSchema(schema ? {} : { not: {} });
  if (!isPlainObject(schema)) return { ok: false, problem: 'a JSON Schema must be an object' };
  const hit = cache.get(schema);
  if (hit) return hit;
  const { draft07, draft2020 } = ajv();
  const compiler = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft07;
  let compiled: CompiledSchema;
  try {
    compiled = { ok: true, validate: compiler.compile(schema) };
  } catch (err) {
    compiled = { ok: false, problem: (err as Error).message };
  }
  cache.set(schema, compiled);
  return compiled;
}

/** Schema errors as short readable lines, e.g. `/path: must be number`. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`);
}
