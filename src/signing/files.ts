import { existsSync } from 'node:fs';

/** The suffix of signature files, beside each signed file. */
export const SIGNATURE_SUFFIX = '.minisig';

/** True when plugin.json or the library has a signature beside it. */
export function hasSignatures(manifestPath: string, libraryPath: string): boolean {
  return existsSync(`${manifestPath}${SIGNATURE_SUFFIX}`) || existsSync(`${libraryPath}${SIGNATURE_SUFFIX}`);
}
