import { ensureHostAddon } from '../toolchain.js';

/** The host addon (src/host/host-addon.c): the native half of what a host's parent does. */
export interface HostAddon {
  /** Maps a memfd sealed against shrinking; undefined for anything else. */
  map(fd: number, bytes: number): ArrayBuffer | undefined;
  /** Lets go of a mapping at once (a stale view then reads zeros). */
  unmap(buffer: ArrayBuffer): void;
  /** posix_spawn in a session of its own: [pid, fd 2, fd 3, fd 4, fd 5] (this side's ends), or an errno. */
  spawn(file: string, argv: string[], envp: string[], cwd: string): [number, number, number, number, number] | number;
  /** A child it started: undefined while it runs, its wait status (>= 0) once reaped, or -errno. */
  reap(pid: number): number | undefined;
}

// Loaded once per process; later hosts use it at once.
let loaded: HostAddon | undefined;

/** The addon, built (on first use, into the cache) and loaded the first time it is asked for. */
export async function hostAddon(): Promise<HostAddon> {
  if (!loaded) {
    const module = { exports: {} as HostAddon };
    process.dlopen(module, await ensureHostAddon());
    loaded ??= module.exports;
  }
  return loaded;
}

/** The addon if some caller has loaded it already (a host spawns without waiting for a build). */
export function loadedHostAddon(): HostAddon | undefined {
  return loaded;
}
