#!/usr/bin/env node
// Bundles the CLI for start-up time; `npm run build` runs it after tsc. Node 20 loads one CommonJS file
// far faster than the ES modules tsc emits (each costs a resolve, an async read and a link, and the MCP
// SDK with zod is a few hundred of them). Two files, so a command pays only for what it runs:
//   dist/cli/skillplug.cjs  the package's bin: dist/cli/main.js and every module it reaches, each one
//                           initialized when first imported, as the ES modules were.
//   dist/cli/mcp-sdk.cjs    the MCP SDK and zod, required by serve alone; the SDK's ajv validator is
//                           loaded on its first use (serve passes its own, which builds it on first use).
// koffi (a native addon) stays in node_modules; so does ajv for skillplug's own tool schemas, which
// src/manifest/schema.ts requires by path at run time. Usage: node scripts/bundle-cli.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import fsPromises from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = path.join(ROOT, 'dist', 'cli');
const SDK_FILE = 'mcp-sdk.cjs';

/** The SDK modules skillplug imports, each under the name it has in the SDK bundle's exports. */
const SDK_MODULES = {
  server: '@modelcontextprotocol/sdk/server/index.js',
  types: '@modelcontextprotocol/sdk/types.js',
  ajv: '@modelcontextprotocol/sdk/validation/ajv',
};
const AJV_PROVIDER = /(^|\/)validation\/ajv(-provider\.js)?$/;

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // import() of a built-in becomes require(): bin.cjs runs the bundle as a vm.Script, which has no ES module loader.
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
  // ES modules read import.meta.url (to find the package root, to require ajv and koffi): the bundle's own URL.
  define: { 'import.meta.url': '__bundleUrl' },
  // The whole bundle is the function Node's loader would wrap it in, so bin.cjs compiles the file's text as
  // it is (a wrapped copy of 463 KB, made at every start, is page-faulted in). Required as a module (Node 22),
  // the head calls it with the module's own arguments; run as a script, the function is what the script gives.
  // Strict as the ES modules were: the directive must come first in the function, before the banner's own line.
  banner: {
    js: "(typeof module === 'object' ? (bundle) => bundle(exports, require, module, __filename, __dirname) : (bundle) => bundle)(function (exports, require, module, __filename, __dirname) {\n'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;",
  },
  footer: { js: '});' },
};

// The SDK's ajv provider, wherever imported, becomes a class that requires the real one when first constructed.
const lazyAjvProvider = {
  name: 'lazy-ajv-provider',
  setup(b) {
    b.onResolve({ filter: AJV_PROVIDER }, (args) => (args.kind === 'require-call' ? undefined : { path: 'ajv-provider', namespace: 'lazy' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      resolveDir: ROOT,
      loader: 'js',
      contents: `let real;
export class AjvJsonSchemaValidator {
  constructor(ajv) {
    real ??= require(${JSON.stringify(SDK_MODULES.ajv)}).AjvJsonSchemaValidator;
    return new real(ajv);
  }
}`,
    }));
  },
};

await build({
  ...common,
  stdin: { contents: Object.entries(SDK_MODULES).map(([name, spec]) => `export * as ${name} from ${JSON.stringify(spec)};`).join('\n'), resolveDir: ROOT, loader: 'js' },
  outfile: path.join(OUT_DIR, SDK_FILE),
  // Third-party code, read on every serve start: a third of the size parses a few ms sooner.
  minify: true,
  plugins: [lazyAjvProvider],
});

// node:fs/promises, wherever imported, becomes functions that require it on first call: loading it (and
// the readline and watcher modules it pulls in) costs a command like list more than its whole scan, and
// list calls none of it. Its functions are named from this Node's module; an import of another name fails the build.
const lazyFsPromises = {
  name: 'lazy-fs-promises',
  setup(b) {
    // The stand-in's own require is of the real module.
    b.onResolve({ filter: /^(node:)?fs\/promises$/ }, (args) => (args.namespace === 'lazy-fs' ? { path: args.path, external: true } : { path: 'fs-promises', namespace: 'lazy-fs' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-fs' }, () => ({
      resolveDir: ROOT,
      loader: 'js',
      contents: [
        'let real;',
        "const load = () => (real ??= require('node:fs/promises'));",
        ...Object.keys(fsPromises)
          .filter((name) => typeof fsPromises[name] === 'function')
          .map((name) => `export function ${name}(...args) { return load().${name}(...args); }`),
      ].join('\n'),
    }));
  },
};

// In the bin, each SDK module is its part of the SDK bundle, required where the module was imported.
const sdkFromBundle = {
  name: 'sdk-from-bundle',
  setup(b) {
    const byModule = new Map(Object.entries(SDK_MODULES).map(([name, spec]) => [spec, name]));
    b.onResolve({ filter: /^@modelcontextprotocol\/sdk\// }, (args) => {
      const name = byModule.get(args.path);
      if (name === undefined) throw new Error(`${args.importer} imports ${args.path}; add it to SDK_MODULES in scripts/bundle-cli.mjs`);
      return { path: name, namespace: 'sdk' };
    });
    b.onResolve({ filter: /^\.\/mcp-sdk\.cjs$/ }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'sdk' }, (args) => ({ resolveDir: OUT_DIR, loader: 'js', contents: `module.exports = require('./${SDK_FILE}').${args.path};` }));
  },
};

const CLI_FILE = path.join(OUT_DIR, 'skillplug.cjs');
await build({
  ...common,
  entryPoints: [path.join(OUT_DIR, 'main.js')],
  outfile: CLI_FILE,
  external: ['koffi'],
  plugins: [sdkFromBundle, lazyFsPromises],
});

// ASCII text is a one-byte string for V8, read and decoded faster at every start than the two-byte
// string one non-ASCII character makes of the whole file. esbuild escapes it everywhere but in kept
// comments, where an escape reads as well. main.ts's hashbang goes: only bin.cjs runs the bundle, and
// a hashbang is a comment only at the very start of a script, which the banner now is.
const cli = readFileSync(CLI_FILE, 'utf8');
writeFileSync(CLI_FILE, cli.replace(/^#!.*\n/, '').replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
