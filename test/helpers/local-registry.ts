// A throwaway npm registry on 127.0.0.1 serving skillplug's runtime dependencies from this checkout's
// node_modules, so `npm install -g` of the packed tarball is tested offline, from local files only.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { REPO_ROOT } from './fixtures.js';

interface LockPackage {
  version: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
}

/** A running local registry. */
export interface LocalRegistry {
  url: string;
  /** Paths npm asked for that the registry does not hold, optional peers aside (should stay empty). */
  misses: string[];
  close(): Promise<void>;
}

/** Serves every non-dev package of package-lock.json: tarballs packed from node_modules, packuments built from their package.json. */
export async function startLocalRegistry(workDir: string): Promise<LocalRegistry> {
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const tarballs = path.join(workDir, 'tarballs');
  mkdirSync(tarballs, { recursive: true });
  const packuments = new Map<string, { name: string; 'dist-tags': { latest: string }; versions: Record<string, unknown> }>();
  const files = new Map<string, string>();
  let url = '';
  const versionsOf = (name: string) => {
    let doc = packuments.get(name);
    if (!doc) {
      doc = { name, 'dist-tags': { latest: '' }, versions: {} };
      packuments.set(name, doc);
    }
    return doc;
  };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.dev || entry.devOptional) continue;
    const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const dir = path.join(REPO_ROOT, key);
    const doc = versionsOf(name);
    if (doc.versions[entry.version]) continue;
    if (!existsSync(path.join(dir, 'package.json'))) {
      // Another platform's optional package: its os/cpu let npm skip it without a tarball.
      doc.versions[entry.version] = { name, version: entry.version, os: entry.os, cpu: entry.cpu, dist: { tarball: 'URL/-/missing.tgz' } };
      continue;
    }
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const file = `${name.replace('/', '__')}-${entry.version}.tgz`;
    const tarball = path.join(tarballs, file);
    execFileSync('tar', ['-czf', tarball, '--exclude=./node_modules', '-C', dir, '--transform', 's,^\\.,package,', '.']);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    files.set(`/-/${file}`, tarball);
    doc.versions[entry.version] = { ...manifest, name, version: entry.version, dist: { tarball: `URL/-/${file}`, integrity } };
  }
  // npm looks up optional peers too; not holding them is expected, not a miss.
  const optionalPeers = new Set<string>();
  for (const doc of packuments.values()) {
    for (const version of Object.values(doc.versions) as { peerDependenciesMeta?: Record<string, { optional?: boolean }> }[]) {
      for (const [peer, meta] of Object.entries(version.peerDependenciesMeta ?? {})) if (meta.optional) optionalPeers.add(peer);
    }
  }
  for (const doc of packuments.values()) doc['dist-tags'].latest = Object.keys(doc.versions).at(-1) as string;
  const misses: string[] = [];
  const server: Server = createServer((req, res) => {
    const route = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
    const tarball = files.get(route);
    if (tarball) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(tarball));
      return;
    }
    const doc = packuments.get(route.slice(1));
    if (!doc) {
      if (!optionalPeers.has(route.slice(1))) misses.push(route);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc).replaceAll('"URL/-/', `"${url}/-/`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the local registry has no TCP address');
  url = `http://127.0.0.1:${address.port}`;
  return { url, misses, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
