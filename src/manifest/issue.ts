// Apart from index.ts so the library checks it calls can name the type without importing it back.
import type { ErrorCode } from '../errors.js';

/** One problem found in a plugin directory. */
export interface ValidationIssue {
  /** Error code, e.g. `E_INVALID_MANIFEST`. */
  code: ErrorCode;
  /** What is wrong and how to fix it. */
  message: string;
  /** The plugin.json field at fault, when there is one. */
  field?: string;
  /** Facts for programs (e.g. a missing library's `tried`, `reason`, `found`); the error's `data`. */
  data?: Record<string, unknown>;
}
