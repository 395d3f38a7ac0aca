import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** skillplug's own version, from the package.json nearest above this module (dist/ or a test build). */
export function packageVersion(): string {
  if (cached) return cached;
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'skillplug' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // Not here: look one level up.
    }
    if (dir.pathname === '/') return (cached = '0.0.0');
  }
}
