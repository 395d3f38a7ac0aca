/**
 * Internal seams of the loader for tests that must act at one exact moment of a load (e.g. swap a
 * library between verification and opening). Not exported from the package and not a loader option,
 * so no caller can reach them; like host/tuning.ts, process-wide and unset in production.
 */
export interface LoaderSeams {
  /** Runs after a plugin's files were verified and before its library loads. */
  afterVerify?: (info: { dir: string; libraryPath: string }) => void | Promise<void>;
}

/** The seams in force; tests set a field and delete it when done. */
export const loaderSeams: LoaderSeams = {};
