import path from 'node:path';

/** The environment variables that move the user plugin dirs, as VT Code reads them. */
export interface PluginDirsEnv {
  /** VT Code's legacy home (default `~/.vtcode`); plugins in `$VTCODE_HOME/plugins`. */
  VTCODE_HOME?: string | undefined;
  /** VT Code's data dir (default `$XDG_DATA_HOME/vtcode`, else `~/.local/share/vtcode`); plugins in `$VTCODE_DATA/plugins`. */
  VTCODE_DATA?: string | undefined;
  /** The XDG data home VT Code's data dir falls back to on Linux and the BSDs. */
  XDG_DATA_HOME?: string | undefined;
  /** Codex's home (default `~/.codex`); plugins in `$CODEX_HOME/plugins`. */
  CODEX_HOME?: string | undefined;
}

/** One user plugin dir and the variable that placed it, if any. */
export interface UserPluginDir {
  path: string;
  /** The environment variable it came from; absent when it is the home-relative default. */
  from?: keyof PluginDirsEnv;
}

const XDG_PLATFORMS: readonly NodeJS.Platform[] = ['linux', 'freebsd', 'netbsd', 'openbsd'];

/**
 * The user plugin dirs VT Code scans, in skillplug's precedence order (first wins a name clash):
 * `$VTCODE_HOME/plugins` (skillplug's own dir since its first release, so existing setups keep
 * resolving names as before), `$VTCODE_DATA/plugins` (where VT Code's guide installs plugins),
 * `$CODEX_HOME/plugins`, then `~/.agents/plugins`. Like VT Code, a variable counts only when it
 * holds an absolute path; others are reported through `onIgnored` and the default is used.
 */
export function userPluginDirs(
  home: string,
  env: PluginDirsEnv,
  platform: NodeJS.Platform = process.platform,
  onIgnored?: (variable: keyof PluginDirsEnv, value: string) => void,
): UserPluginDir[] {
  const fromEnv = (variable: keyof PluginDirsEnv): string | undefined => {
    const value = env[variable]?.trim();
    if (!value) return undefined;
    if (!path.isAbsolute(value)) {
      onIgnored?.(variable, value);
      return undefined;
    }
    return value;
  };
  const dirs: UserPluginDir[] = [];
  const add = (variable: keyof PluginDirsEnv, fallback: string): void => {
    const base = fromEnv(variable);
    dirs.push(base === undefined ? { path: path.join(fallback, 'plugins') } : { path: path.join(base, 'plugins'), from: variable });
  };
  add('VTCODE_HOME', path.join(home, '.vtcode'));
  add('VTCODE_DATA', vtcodeDataDefault(home, platform, fromEnv));
  add('CODEX_HOME', path.join(home, '.codex'));
  dirs.push({ path: path.join(home, '.agents', 'plugins') });
  return dirs;
}

// VT Code's native data dir per platform (vtcode-commons vtcode_paths.rs native_roots), used when VTCODE_DATA is unset.
function vtcodeDataDefault(home: string, platform: NodeJS.Platform, fromEnv: (v: keyof PluginDirsEnv) => string | undefined): string {
  if (XDG_PLATFORMS.includes(platform)) {
    const xdg = fromEnv('XDG_DATA_HOME');
    return xdg === undefined ? path.join(home, '.local', 'share', 'vtcode') : path.join(xdg, 'vtcode');
  }
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'com.vinhnx.vtcode');
  if (platform === 'win32') return path.join(home, 'AppData', 'Roaming', 'vinhnx', 'vtcode', 'data');
  return path.join(home, '.local', 'share', 'vtcode');
}
