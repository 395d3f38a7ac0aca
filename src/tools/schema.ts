import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isPlainObject } from '../abi/codec.js';

// Plugin schemas are authored by third parties: accept unknown keywords rather than refuse them.
const draft07 = new Ajv({ allErrors: true, strict: false });
const draft2020 = new Ajv2020({ allErrors: true, strict: false });

/** A compiled schema, or why it does not compile. */
export type CompiledSchema = { ok: true; validate: ValidateFunction } | { ok: false; problem: string };

const cache = new WeakMap<object, CompiledSchema>();

/** Compiles a JSON Schema (draft-07, or 2020-12 when its `$schema` says so). */
export function compileSchema(schema: unknown): CompiledSchema {
  if (typeof schema === 'boolean') return compileSchema(schema ? {} : { not: {} });
  if (!isPlainObject(schema)) return { ok: false, problem: 'a JSON Schema must be an object' };
  const hit = cache.get(schema);
  if (hit) return hit;
  const ajv = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft07;
  let compiled: CompiledSchema;
  try {
    compiled = { ok: true, validate: ajv.compile(schema) };
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
