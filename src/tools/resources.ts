// A plugin's own documentation and helper files (README.md, scripts/, templates/) as MCP resources.
import { constants, lstatSync, readdirSync, realpathSync, type Stats } from 'node:fs';
import { open, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, PluginError } from '../errors.js';

/** The entries of a plugin dir served as resources: the plugin layout's README and helper dirs. */
export const RESOURCE_ENTRIES = ['README.md', 'scripts', 'templates'] as const;
/** Largest file served as a resource, in bytes; larger ones are left out of the list. */
export const MAX_RESOURCE_BYTES = 1024 * 1024;
/** Most resources listed per plugin. */
export const MAX_RESOURCES_PER_PLUGIN = 256;
/** Deepest dir nesting followed under scripts/ and templates/. */
export const MAX_RESOURCE_DEPTH = 8;
/** URI scheme of plugin resources: `skillplug://plugin/<tool>/<path inside the plugin dir>`. */
export const RESOURCE_URI_PREFIX = 'skillplug://plugin/';

/** One file of a plugin served as a resource. */
export interface PluginResource {
  uri: string;
  /** Path inside the plugin dir, with `/` separators. */
  relative: string;
  /** Absolute path. */
  path: string;
  size: number;
  mimeType: string;
  /** Change identity (size and mtime), for telling clients the list changed. */
  identity: string;
}

/** What a plugin dir offers as resources, and what it holds that is refused. */
export interface PluginResources {
  resources: PluginResource[];
  /** Entries left out: symlinks, special files, too large, too deep, too many. */
  skipped: { relative: string; reason: 'symlink' | 'not-a-file' | 'too-large' | 'too-deep' | 'too-many' }[];
  /** Dirs walked (the plugin dir's scripts/ and templates/ and their subdirs), for watching. */
  dirs: string[];
}

const MIME_TYPES: Record<string, string> = {
  '.md': 'text/markdown',
  '.sh': 'text/x-shellscript',
  '.py': 'text/x-python',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.html': 'text/html',
  '.toml': 'application/toml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
};

function mimeTypeOf(file: string): string {
  return MIME_TYPES[path.extname(file).toLowerCase()] ?? 'text/plain';
}

/** The resource URI of a file inside a tool's plugin dir. */
export function resourceUri(tool: string, relative: string): string {
  return `${RESOURCE_URI_PREFIX}${encodeURIComponent(tool)}/${relative.split('/').map(encodeURIComponent).join('/')}`;
}

/** The tool and the path inside its plugin dir named by a resource URI; undefined for any other URI. */
export function parseResourceUri(uri: string): { tool: string; relative: string } | undefined {
  if (!uri.startsWith(RESOURCE_URI_PREFIX)) return undefined;
  const parts = uri.slice(RESOURCE_URI_PREFIX.length).split('/');
  try {
    const [tool, ...rest] = parts.map(decodeURIComponent);
    if (!tool || rest.length === 0 || rest.some((p) => p === '' || p === '.' || p === '..' || p.includes('/') || p.includes('\0'))) return undefined;
    return { tool, relative: rest.join('/') };
  } catch {
    return undefined;
  }
}

/**
 * Lists a plugin dir's README.md and the files under scripts/ and templates/. Reads names and sizes
 * only. Symlinks are never followed (a link could point anywhere), nor are special files served.
 */
export function listPluginResources(dir: string, tool: string): PluginResources {
  const found: PluginResources = { resources: [], skipped: [], dirs: [] };
  const visit = (relative: string, depth: number): void => {
    const absolute = path.join(dir, relative);
    let info: Stats | undefined;
    try {
      info = lstatSync(absolute, { throwIfNoEntry: false });
    } catch {
      info = undefined;
    }
    if (!info) return;
    if (info.isSymbolicLink()) found.skipped.push({ relative, reason: 'symlink' });
    else if (info.isDirectory()) {
      if (relative === 'README.md') found.skipped.push({ relative, reason: 'not-a-file' });
      else if (depth > MAX_RESOURCE_DEPTH) found.skipped.push({ relative, reason: 'too-deep' });
      else {
        found.dirs.push(absolute);
        let names: string[];
        try {
          names = readdirSync(absolute).sort();
        } catch {
          names = [];
        }
        for (const name of names) visit(`${relative}/${name}`, depth + 1);
      }
    } else if (!info.isFile()) found.skipped.push({ relative, reason: 'not-a-file' });
    else if (info.size > MAX_RESOURCE_BYTES) found.skipped.push({ relative, reason: 'too-large' });
    else if (found.resources.length >= MAX_RESOURCES_PER_PLUGIN) found.skipped.push({ relative, reason: 'too-many' });
    else {
      found.resources.push({ uri: resourceUri(tool, relative), relative, path: absolute, size: info.size, mimeType: mimeTypeOf(relative), identity: `${info.size}:${info.mtimeMs}:${info.ino}` });
    }
  };
  for (const entry of RESOURCE_ENTRIES) visit(entry, 0);
  return found;
}

/** The contents of a resource: text when it is UTF-8, else base64 (MCP's `blob`). */
export type ResourceContents = { uri: string; mimeType: string; text: string } | { uri: string; mimeType: string; blob: string };

function notServed(tool: string, dir: string, relative: string, why: string): PluginError {
  return new PluginError(ErrorCode.NOT_FOUND, `Plugin "${tool}" (${dir}) serves no resource "${relative}": ${why}. List the resources (resources/list) for what it offers.`, {
    plugin: tool,
    path: path.join(dir, relative),
  });
}

/**
 * Reads one listed resource. The file is opened without following a final symlink and, where the
 * system shows it (/proc), checked to really lie inside the plugin dir after opening, so a file
 * swapped for a link, or a dir swapped for one, between listing and reading is refused.
 */
export async function readPluginResource(dir: string, tool: string, resource: PluginResource): Promise<ResourceContents> {
  const handle = await open(resource.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw notServed(tool, dir, resource.relative, err.code === 'ELOOP' ? 'it is a symbolic link' : `it cannot be opened (${err.code ?? err.message})`);
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw notServed(tool, dir, resource.relative, 'it is not a regular file');
    if (info.size > MAX_RESOURCE_BYTES) throw notServed(tool, dir, resource.relative, `it is larger than ${MAX_RESOURCE_BYTES} bytes`);
    const root = await realpath(dir);
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => realpathSync(resource.path));
    if (!opened.startsWith(`${root}${path.sep}`)) throw notServed(tool, dir, resource.relative, 'it resolves outside the plugin dir');
    const buffer = Buffer.alloc(MAX_RESOURCE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_RESOURCE_BYTES) throw notServed(tool, dir, resource.relative, `it grew past ${MAX_RESOURCE_BYTES} bytes`);
    }
    const bytes = buffer.subarray(0, length);
    try {
      return { uri: resource.uri, mimeType: resource.mimeType, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      return { uri: resource.uri, mimeType: 'application/octet-stream', blob: bytes.toString('base64') };
    }
  } finally {
    await handle.close();
  }
}
