import { existsSync } from 'node:fs';
import path from 'node:path';

/** The suffix of signature files, beside each signed file. */
export const SIGNATURE_SUFFIX = '.minisig';

/** The signed statement's file name, at the top of the plugin dir; its signature is `<STATEMENT_FILE>.minisig`. */
export const STATEMENT_FILE = 'skillplug-statement.json';

/** True when plugin.json or the library has a signature beside it, or the plugin carries a statement. */
export function hasSignatures(manifestPath: string, libraryPath: string): boolean {
  return (
    existsSync(`${manifestPath}${SIGNATURE_SUFFIX}`) ||
    existsSync(`${libraryPath}${SIGNATURE_SUFFIX}`) ||
    existsSync(path.join(path.dirname(manifestPath), STATEMENT_FILE)) ||
    existsSync(path.join(path.dirname(manifestPath), `${STATEMENT_FILE}${SIGNATURE_SUFFIX}`))
  );
}
