import { decodeMetadata, decodeResult, notFreeableError, nullResultError, type Origin, type ReturnedString } from '../abi/codec.js';
import { PLUGIN_ABI_VERSION, type PluginMetadata, type PluginResult } from '../abi/types.js';
import { ErrorCode, PluginError } from '../errors.js';
import { outputTooLargeError } from './call-errors.js';

/** Metadata larger than this is refused: it is a few fields, not a payload. */
export const MAX_METADATA_BYTES = 1024 * 1024;

/** Throws `E_ABI_MISMATCH` unless the library speaks this host's ABI version. */
export function checkAbiVersion(found: number, origin: Origin): void {
  if (found !== PLUGIN_ABI_VERSION) {
    throw new PluginError(
      ErrorCode.ABI_MISMATCH,
      `Plugin "${origin.plugin}" (${origin.path}) speaks native plugin ABI version ${found}, but this host supports version ${PLUGIN_ABI_VERSION}. Rebuild the plugin against ABI v${PLUGIN_ABI_VERSION} (vtcode_plugin_version() must return ${PLUGIN_ABI_VERSION}).`,
      { plugin: origin.plugin, path: origin.path, data: { expected: PLUGIN_ABI_VERSION, found } },
    );
  }
}

/** Decodes the metadata a library returned and checks that it names the same plugin as plugin.json. */
export function checkMetadata(returned: ReturnedString, origin: Origin, manifestName: string): PluginMetadata {
  if (returned.kind === 'null') {
    const err = nullResultError('vtcode_plugin_metadata()', origin);
    throw new PluginError(ErrorCode.INVALID_METADATA, err.message, { plugin: origin.plugin, path: origin.path, data: { cause: err.code } });
  }
  if (returned.kind === 'too-large') {
    throw new PluginError(
      ErrorCode.INVALID_METADATA,
      `Plugin "${origin.plugin}" (${origin.path}) returned ${returned.length} bytes of metadata, over the ${MAX_METADATA_BYTES}-byte limit. Metadata is a handful of fields; fix the plugin.`,
      { plugin: origin.plugin, path: origin.path, data: { bytes: returned.length } },
    );
  }
  if (returned.kind === 'not-freeable') throw notFreeableError(returned, 'vtcode_plugin_metadata', origin);
  const metadata = decodeMetadata(returned, origin);
  if (metadata.name !== manifestName) {
    throw new PluginError(
      ErrorCode.INVALID_METADATA,
      `Plugin at ${origin.path} is named "${manifestName}" in plugin.json but "${metadata.name}" by its library. Make the two names match.`,
      { plugin: manifestName, path: origin.path, data: { manifest: manifestName, library: metadata.name } },
    );
  }
  return metadata;
}

/** Turns what `vtcode_plugin_execute()` returned into a result, or the matching error. */
export function resultFromReturned(returned: ReturnedString, origin: Origin, maxOutputBytes: number): PluginResult {
  if (returned.kind === 'null') throw nullResultError('vtcode_plugin_execute()', origin);
  if (returned.kind === 'too-large') throw outputTooLargeError(origin, returned.length, maxOutputBytes);
  if (returned.kind === 'not-freeable') throw notFreeableError(returned, 'vtcode_plugin_execute', origin);
  return decodeResult(returned, origin);
}
