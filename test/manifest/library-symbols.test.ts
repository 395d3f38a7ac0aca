// Reading a library's exported symbols without loading it: real fixtures (C, C++), synthetic ELFs of
// every class and byte order, stripped section headers, and truncated or garbled copies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode, readLibraryExports, validatePlugin } from '../../src/index.js';
import { checkLibrarySymbols } from '../../src/manifest/library-symbols.js';
import { FIXTURES_DIR, buildFixture, runCli, tempDir, writeManifest } from '../helpers/fixtures.js';

const run = promisify(execFile);
const hasGxx = await run('g++', ['--version']).then(
  () => true,
  () => false,
);
const REQUIRED = ['vtcode_plugin_version', 'vtcode_plugin_metadata', 'vtcode_plugin_execute'];

interface SyntheticSymbol {
  name: string;
  defined?: boolean;
  bind?: number;
  visibility?: number;
}

/** A minimal ELF shared object: header, .dynstr, .dynsym and three section headers (null, .dynsym, .dynstr). */
function syntheticElf(wide: boolean, little: boolean, symbols: SyntheticSymbol[]): Buffer {
  const ehsize = wide ? 64 : 52;
  const symsize = wide ? 24 : 16;
  const shsize = wide ? 64 : 40;
  const strings = Buffer.concat([Buffer.from([0]), ...symbols.map((s) => Buffer.from(`${s.name}\0`, 'latin1'))]);
  const strOffset = ehsize;
  const symOffset = strOffset + strings.length + 8 - ((strOffset + strings.length) % 8);
  const symBytes = symsize * (symbols.length + 1);
  const shoff = symOffset + symBytes;
  const out = Buffer.alloc(shoff + 3 * shsize);
  const u16 = (at: number, v: number) => (little ? out.writeUInt16LE(v, at) : out.writeUInt16BE(v, at));
  const u32 = (at: number, v: number) => (little ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at));
  const word = (at: number, v: number) => (wide ? (little ? out.writeBigUInt64LE(BigInt(v), at) : out.writeBigUInt64BE(BigInt(v), at)) : u32(at, v));
  out.set([0x7f, 0x45, 0x4c, 0x46, wide ? 2 : 1, little ? 1 : 2, 1]);
  u16(16, 3); // ET_DYN
  word(wide ? 40 : 32, shoff);
  u16(wide ? 52 : 40, ehsize);
  u16(wide ? 58 : 46, shsize);
  u16(wide ? 60 : 48, 3);
  strings.copy(out, strOffset);
  let nameAt = 1;
  symbols.forEach((s, i) => {
    const at = symOffset + (i + 1) * symsize;
    u32(at, nameAt);
    nameAt += Buffer.byteLength(s.name, 'latin1') + 1;
    const info = ((s.bind ?? 1) << 4) | 2; // STT_FUNC
    out[at + (wide ? 4 : 12)] = info;
    out[at + (wide ? 5 : 13)] = s.visibility ?? 0;
    u16(at + (wide ? 6 : 14), s.defined === false ? 0 : 7);
  });
  const section = (i: number, type: number, offset: number, size: number, link: number, entsize: number) => {
    const at = shoff + i * shsize;
    u32(at + 4, type);
    word(at + (wide ? 24 : 16), offset);
    word(at + (wide ? 32 : 20), size);
    u32(at + (wide ? 40 : 24), link);
    word(at + (wide ? 56 : 36), entsize);
  };
  section(1, 11, symOffset, symBytes, 2, symsize);
  section(2, 3, strOffset, strings.length, 0, 0);
  return out;
}

/** A copy with the section headers gone, as `sstrip` leaves a library: only PT_DYNAMIC remains. */
function withoutSectionHeaders(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const wide = copy[4] === 2;
  if (wide) copy.writeBigUInt64LE(0n, 40);
  else copy.writeUInt32LE(0, 32);
  copy.writeUInt16LE(0, wide ? 60 : 48);
  return copy;
}

describe('library symbols (ELF dynamic symbol table)', () => {
  let echo: string;
  let echoBytes: Buffer;
  let missingExecute: string;
  let base: string;

  before(async () => {
    base = tempDir();
    echo = await buildFixture(base, { source: 'echo', name: 'echo', manifest: { name: 'echo', description: 'd', version: '1.0.0', abi_version: 1 } });
    echoBytes = readFileSync(path.join(echo, 'libecho.so'));
    missingExecute = await buildFixture(base, { source: 'missing_execute', name: 'noexec' });
  });

  it('finds the ABI symbols a C plugin exports', () => {
    const reading = readLibraryExports(echoBytes);
    assert.ok('exported' in reading);
    for (const symbol of REQUIRED) assert.ok(reading.exported.includes(symbol), symbol);
    assert.deepEqual(checkLibrarySymbols('libecho.so', echoBytes).errors, []);
  });

  it('reads the same exports through PT_DYNAMIC when the section headers are stripped (GNU and SysV hash)', async () => {
    const sysv = path.join(base, 'libsysv.so');
    await run(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-Wl,--hash-style=sysv', '-DPLUGIN_NAME="sysv"', '-o', sysv, path.join(FIXTURES_DIR, 'echo.c')]);
    for (const bytes of [echoBytes, readFileSync(sysv)]) {
      const full = readLibraryExports(bytes);
      const stripped = readLibraryExports(withoutSectionHeaders(bytes));
      assert.ok('exported' in full && 'exported' in stripped, JSON.stringify(stripped));
      assert.deepEqual([...stripped.exported].sort(), [...full.exported].sort());
    }
  });

  it('reads 32- and 64-bit ELF in both byte orders, and skips undefined, local and hidden symbols', () => {
    const symbols: SyntheticSymbol[] = [
      { name: 'vtcode_plugin_version' },
      { name: 'vtcode_plugin_metadata', bind: 2 },
      { name: 'vtcode_plugin_execute' },
      { name: 'imported_from_libc', defined: false },
      { name: 'a_local', bind: 0 },
      { name: 'a_hidden', visibility: 2 },
    ];
    for (const wide of [false, true]) {
      for (const little of [false, true]) {
        const reading = readLibraryExports(syntheticElf(wide, little, symbols));
        assert.deepEqual('exported' in reading ? reading.exported : reading, REQUIRED, `${wide ? 64 : 32}-bit ${little ? 'LE' : 'BE'}`);
      }
    }
  });

  it('names a missing symbol with E_MISSING_SYMBOL', () => {
    const errors = checkLibrarySymbols('libnoexec.so', readFileSync(path.join(missingExecute, 'libnoexec.so'))).errors;
    assert.deepEqual(errors.map((e) => e.code), [ErrorCode.MISSING_SYMBOL]);
    assert.ok(errors[0]?.message.includes('vtcode_plugin_execute'));
  });

  it('a C++ library without extern "C" gets E_MISSING_SYMBOL naming each mangled name found', { skip: hasGxx ? false : 'g++ is not installed' }, async () => {
    const dir = path.join(base, 'mangled');
    await run('mkdir', ['-p', dir]);
    await run('g++', ['-shared', '-fPIC', '-Wall', '-Wextra', '-o', path.join(dir, 'libmangled.so'), path.join(FIXTURES_DIR, 'mangled.cpp')]);
    writeManifest(dir, { name: 'mangled', description: 'd', version: '1.0.0', abi_version: 1 });
    const { errors } = await validatePlugin(dir);
    assert.deepEqual(errors.map((e) => e.code), [ErrorCode.MISSING_SYMBOL, ErrorCode.MISSING_SYMBOL, ErrorCode.MISSING_SYMBOL]);
    // The mangled names are facts read from the fixture, which the message must carry.
    for (const mangled of ['_Z21vtcode_plugin_versionv', '_Z22vtcode_plugin_metadatav', '_Z21vtcode_plugin_executePKc']) {
      assert.ok(errors.some((e) => e.message.includes(mangled)), mangled);
    }
    const cli = await runCli(['validate', dir, '--json']);
    assert.equal(cli.code, 1);
    assert.deepEqual(JSON.parse(cli.stdout).errors.map((e: { code: string }) => e.code), Array(3).fill('E_MISSING_SYMBOL'));
  });

  it('a truncated or garbled ELF is a coded error, never a crash', () => {
    let malformed = 0;
    const lengths = new Set([0, 3, 4, 15, 16, 40, 52, 63, 64, 65]);
    for (let n = 0; n < echoBytes.length; n += 61) lengths.add(n);
    for (const n of lengths) {
      const truncated = echoBytes.subarray(0, n);
      const result = checkLibrarySymbols('cut.so', truncated);
      // A cut beyond every table still reads; any other cut must come back as a coded problem.
      for (const e of result.errors) assert.ok(e.code === ErrorCode.INVALID_STRUCTURE || e.code === ErrorCode.MISSING_SYMBOL);
      if (result.errors.some((e) => e.code === ErrorCode.INVALID_STRUCTURE)) malformed++;
    }
    assert.ok(malformed > lengths.size / 2, `most truncations are malformed (${malformed} of ${lengths.size})`);
    // Seeded garbling of the header and tables: deterministic, so a failure reproduces.
    let seed = 0x5eed;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 400; round++) {
      const garbled = Buffer.from(echoBytes);
      const hits = 1 + Math.floor(random() * 8);
      for (let h = 0; h < hits; h++) {
        const region = random() < 0.5 ? 64 : garbled.length;
        garbled[Math.floor(random() * region)] = Math.floor(random() * 256);
      }
      const result = checkLibrarySymbols('garbled.so', garbled);
      for (const e of [...result.errors]) assert.ok(typeof e.code === 'string' && e.code.startsWith('E_'));
    }
  });

  it('says an object file or an executable is not a shared library', () => {
    const exec = Buffer.from(echoBytes);
    exec.writeUInt16LE(2, 16); // ET_EXEC
    assert.deepEqual(checkLibrarySymbols('exec', exec).errors.map((e) => e.code), [ErrorCode.INVALID_STRUCTURE]);
  });

  it('says a library built for another architecture cannot load here', () => {
    const host = checkLibrarySymbols('libecho.so', echoBytes);
    assert.deepEqual(host.errors, [], 'the fixture is built for this machine');
    const foreign = Buffer.from(echoBytes);
    const arch = process.arch === 'arm64' ? 'x64' : 'arm64';
    foreign.writeUInt16LE(arch === 'arm64' ? 183 : 62, 18);
    assert.deepEqual(checkLibrarySymbols('foreign.so', foreign).errors.map((e) => e.code), [ErrorCode.INVALID_STRUCTURE]);
    assert.deepEqual(checkLibrarySymbols('foreign.so', foreign, arch).errors, [], 'the same bytes are fine on their own machine');
  });

  it('warns, without an error, about a file in no library format it reads', () => {
    const result = checkLibrarySymbols('lib', Buffer.from('not a library at all'));
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings.map((w) => w.code), ['W_SYMBOLS_NOT_CHECKED']);
  });

  it('validate reports a truncated library in a plugin dir as E_INVALID_STRUCTURE', async () => {
    const dir = path.join(base, 'cut');
    await run('mkdir', ['-p', dir]);
    copyFileSync(path.join(echo, 'plugin.json'), path.join(dir, 'plugin.json'));
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'cut', description: 'd', version: '1.0.0', abi_version: 1 }));
    writeFileSync(path.join(dir, 'libcut.so'), echoBytes.subarray(0, 200));
    const cli = await runCli(['validate', dir, '--json']);
    assert.equal(cli.code, 1);
    assert.deepEqual(JSON.parse(cli.stdout).errors.map((e: { code: string }) => e.code), ['E_INVALID_STRUCTURE']);
  });
});

// Mach-O and PE libraries cannot be built here (no cross compilers), so the tests write them byte by byte.

const machoSymbols = (names: readonly string[]): MachOSymbol[] => names.map((name) => ({ name: `_${name}` }));

interface MachOSymbol {
  name: string;
  /** n_type; default N_SECT | N_EXT (a defined, exported symbol). */
  type?: number;
}

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** dyld's export trie with one edge per name from the root (every edge a whole name). */
function exportTrie(names: readonly string[]): Buffer {
  const labels = names.map((n) => Buffer.from(`${n}\0`, 'latin1'));
  // Root: no terminal info, N children; then one leaf per name: 2 bytes of terminal info (flags, address) and no children.
  const rootSize = 1 + 1 + labels.reduce((sum, l) => sum + l.length + 1, 0);
  assert.ok(rootSize + labels.length * 4 < 128, 'child offsets fit the one-byte ULEB128 the root was sized for');
  const root: number[] = [0, names.length];
  const leaves: number[] = [];
  labels.forEach((label, i) => {
    root.push(...label, ...uleb(rootSize + i * 4));
    leaves.push(2, 0, 0, 0);
  });
  return Buffer.from([...root, ...leaves]);
}

/** A minimal Mach-O dylib: header, LC_SYMTAB (+ LC_DYLD_EXPORTS_TRIE), the symbol and string tables, the trie. */
function syntheticMachO(options: { wide?: boolean; little?: boolean; filetype?: number; symbols?: MachOSymbol[]; trie?: string[] }): Buffer {
  const wide = options.wide ?? true;
  const little = options.little ?? true;
  const symbols = options.symbols ?? [];
  const header = wide ? 32 : 28;
  const commands = 24 + (options.trie ? 16 : 0);
  const entry = wide ? 16 : 12;
  const strings = Buffer.concat([Buffer.from([0]), ...symbols.map((s) => Buffer.from(`${s.name}\0`, 'latin1'))]);
  const trie = options.trie ? exportTrie(options.trie) : Buffer.alloc(0);
  const symoff = header + commands;
  const stroff = symoff + symbols.length * entry;
  const trieoff = stroff + strings.length;
  const out = Buffer.alloc(trieoff + trie.length);
  const u32 = (at: number, v: number) => (little ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at));
  u32(0, wide ? 0xfeedfacf : 0xfeedface);
  u32(4, wide ? 0x01000007 : 7); // CPU_TYPE_X86_64 / I386
  u32(12, options.filetype ?? 6); // MH_DYLIB
  u32(16, options.trie ? 2 : 1);
  u32(20, commands);
  u32(header, 0x2); // LC_SYMTAB
  u32(header + 4, 24);
  u32(header + 8, symoff);
  u32(header + 12, symbols.length);
  u32(header + 16, stroff);
  u32(header + 20, strings.length);
  if (options.trie) {
    u32(header + 24, 0x80000033); // LC_DYLD_EXPORTS_TRIE
    u32(header + 28, 16);
    u32(header + 32, trieoff);
    u32(header + 36, trie.length);
  }
  let nameAt = 1;
  symbols.forEach((s, i) => {
    const at = symoff + i * entry;
    u32(at, nameAt);
    nameAt += Buffer.byteLength(s.name, 'latin1') + 1;
    out[at + 4] = s.type ?? 0x0f; // N_SECT | N_EXT
    out[at + 5] = 1;
  });
  strings.copy(out, stroff);
  trie.copy(out, trieoff);
  return out;
}

/** A universal (fat) file holding the given thin slices. */
function fatMachO(slices: Buffer[], wide = false): Buffer {
  const entry = wide ? 32 : 20;
  let offset = 8 + slices.length * entry;
  const header = Buffer.alloc(offset);
  header.writeUInt32BE(wide ? 0xcafebabf : 0xcafebabe, 0);
  header.writeUInt32BE(slices.length, 4);
  const placed: Buffer[] = [header];
  slices.forEach((slice, i) => {
    const at = 8 + i * entry;
    header.writeUInt32BE(i === 0 ? 0x01000007 : 0x0100000c, at);
    if (wide) {
      header.writeBigUInt64BE(BigInt(offset), at + 8);
      header.writeBigUInt64BE(BigInt(slice.length), at + 16);
    } else {
      header.writeUInt32BE(offset, at + 8);
      header.writeUInt32BE(slice.length, at + 12);
    }
    placed.push(slice);
    offset += slice.length;
  });
  return Buffer.concat(placed);
}

/** A minimal PE DLL: DOS stub pointer, COFF header, optional header with one data directory, one section holding the export directory. */
function syntheticPe(names: readonly string[], options: { dll?: boolean; pe32plus?: boolean } = {}): Buffer {
  const plus = options.pe32plus ?? true;
  const peAt = 0x40;
  const optionalSize = plus ? 112 + 16 * 8 : 96 + 16 * 8;
  const sectionTable = peAt + 24 + optionalSize;
  const raw = sectionTable + 40;
  const va = 0x1000;
  const nameBytes = Buffer.concat(names.map((n) => Buffer.from(`${n}\0`, 'latin1')));
  const dirSize = 40;
  const namePointers = dirSize;
  const strings = namePointers + names.length * 4;
  const out = Buffer.alloc(raw + strings + nameBytes.length);
  out.write('MZ', 0, 'latin1');
  out.writeUInt32LE(peAt, 0x3c);
  out.writeUInt32LE(0x4550, peAt);
  out.writeUInt16LE(plus ? 0x8664 : 0x14c, peAt + 4);
  out.writeUInt16LE(1, peAt + 6);
  out.writeUInt16LE(optionalSize, peAt + 20);
  out.writeUInt16LE(options.dll === false ? 0x0002 : 0x2002, peAt + 22);
  const optional = peAt + 24;
  out.writeUInt16LE(plus ? 0x20b : 0x10b, optional);
  out.writeUInt32LE(16, optional + (plus ? 108 : 92));
  out.writeUInt32LE(va, optional + (plus ? 112 : 96));
  out.writeUInt32LE(strings + nameBytes.length, optional + (plus ? 116 : 100));
  out.write('.edata', sectionTable, 'latin1');
  out.writeUInt32LE(strings + nameBytes.length, sectionTable + 8);
  out.writeUInt32LE(va, sectionTable + 12);
  out.writeUInt32LE(strings + nameBytes.length, sectionTable + 16);
  out.writeUInt32LE(raw, sectionTable + 20);
  out.writeUInt32LE(names.length, raw + 20);
  out.writeUInt32LE(names.length, raw + 24);
  out.writeUInt32LE(va + namePointers, raw + 32);
  let at = strings;
  names.forEach((n, i) => {
    out.writeUInt32LE(va + at, raw + namePointers + i * 4);
    at += Buffer.byteLength(n, 'latin1') + 1;
  });
  nameBytes.copy(out, raw + strings);
  return out;
}

const codes = (result: { errors: { code: string }[] }) => result.errors.map((e) => e.code);

describe('library symbols (Mach-O and PE, from hand-built bytes)', () => {
  it('reads a Mach-O dylib\'s LC_SYMTAB in each word size and byte order, skipping undefined, private and debug symbols', () => {
    const symbols: MachOSymbol[] = [
      ...machoSymbols(REQUIRED),
      { name: '_imported', type: 0x01 }, // N_UNDF | N_EXT
      { name: '_private_extern', type: 0x1f }, // N_PEXT
      { name: '_debug_stab', type: 0x24 }, // N_FUN stab
      { name: '_local_only', type: 0x0e }, // N_SECT without N_EXT
    ];
    for (const wide of [false, true]) {
      for (const little of [false, true]) {
        const bytes = syntheticMachO({ wide, little, symbols });
        assert.deepEqual(readLibraryExports(bytes), { format: 'mach-o', exported: REQUIRED }, `${wide ? 64 : 32}-bit ${little ? 'LE' : 'BE'}`);
        assert.deepEqual(checkLibrarySymbols('libx.dylib', bytes), { errors: [], warnings: [] });
      }
    }
  });

  it('reads the dyld export trie when the symbol table has no exports', () => {
    const reading = readLibraryExports(syntheticMachO({ trie: REQUIRED.map((n) => `_${n}`) }));
    assert.deepEqual('exported' in reading ? [...reading.exported].sort() : reading, [...REQUIRED].sort());
  });

  it('names a symbol missing from a Mach-O dylib, and the mangled C++ name when extern "C" was forgotten', () => {
    const missing = checkLibrarySymbols('libx.dylib', syntheticMachO({ symbols: machoSymbols(REQUIRED.slice(0, 2)) }));
    assert.deepEqual(codes(missing), [ErrorCode.MISSING_SYMBOL]);
    assert.ok(missing.errors[0]?.message.includes('vtcode_plugin_execute'));
    const mangled = ['__Z21vtcode_plugin_versionv', '__Z22vtcode_plugin_metadatav', '__Z21vtcode_plugin_executePKc'];
    const cpp = checkLibrarySymbols('libcpp.dylib', syntheticMachO({ symbols: mangled.map((name) => ({ name })) }));
    assert.deepEqual(codes(cpp), Array(3).fill(ErrorCode.MISSING_SYMBOL));
    // Named as C++ tools show them, with Mach-O's own leading underscore removed.
    for (const name of mangled) assert.ok(cpp.errors.some((e) => e.message.includes(name.slice(1))), name);
  });

  it('a universal (fat) file counts a symbol only when every slice exports it', () => {
    const full = syntheticMachO({ symbols: machoSymbols(REQUIRED) });
    const partial = syntheticMachO({ symbols: machoSymbols(REQUIRED.slice(1)) });
    for (const wide of [false, true]) {
      assert.deepEqual(codes(checkLibrarySymbols('fat.dylib', fatMachO([full, full], wide))), []);
      const mixed = checkLibrarySymbols('fat.dylib', fatMachO([full, partial], wide));
      assert.deepEqual(codes(mixed), [ErrorCode.MISSING_SYMBOL]);
      assert.ok(mixed.errors[0]?.message.includes('vtcode_plugin_version'));
    }
  });

  it('says a Mach-O executable or object file is not a dynamic library', () => {
    assert.deepEqual(codes(checkLibrarySymbols('exe', syntheticMachO({ filetype: 2, symbols: machoSymbols(REQUIRED) }))), [ErrorCode.INVALID_STRUCTURE]);
  });

  it('reads a PE DLL\'s export directory (PE32 and PE32+), and names a missing or MSVC-mangled export', () => {
    for (const pe32plus of [false, true]) {
      const bytes = syntheticPe(REQUIRED, { pe32plus });
      assert.deepEqual(readLibraryExports(bytes), { format: 'pe', exported: REQUIRED });
      assert.deepEqual(checkLibrarySymbols('x.dll', bytes), { errors: [], warnings: [] });
    }
    const missing = checkLibrarySymbols('x.dll', syntheticPe(REQUIRED.slice(0, 2)));
    assert.deepEqual(codes(missing), [ErrorCode.MISSING_SYMBOL]);
    const msvc = checkLibrarySymbols('cpp.dll', syntheticPe(['?vtcode_plugin_version@@YAIXZ', 'vtcode_plugin_metadata', 'vtcode_plugin_execute']));
    assert.deepEqual(codes(msvc), [ErrorCode.MISSING_SYMBOL]);
    assert.ok(msvc.errors[0]?.message.includes('?vtcode_plugin_version@@YAIXZ'));
  });

  it('says a PE executable is not a DLL, and an MS-DOS stub is not a PE file', () => {
    assert.deepEqual(codes(checkLibrarySymbols('x.exe', syntheticPe(REQUIRED, { dll: false }))), [ErrorCode.INVALID_STRUCTURE]);
    assert.deepEqual(codes(checkLibrarySymbols('stub', Buffer.concat([Buffer.from('MZ'), Buffer.alloc(62)]))), [ErrorCode.INVALID_STRUCTURE]);
  });

  it('a truncated or garbled Mach-O, fat or PE file is a coded error, never a crash or a hang', () => {
    let seed = 0xfa7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const samples = [
      syntheticMachO({ symbols: machoSymbols(REQUIRED), trie: REQUIRED.map((n) => `_${n}`) }),
      fatMachO([syntheticMachO({ symbols: machoSymbols(REQUIRED) }), syntheticMachO({ wide: false, symbols: machoSymbols(REQUIRED) })]),
      syntheticPe(REQUIRED),
    ];
    for (const bytes of samples) {
      let malformed = 0;
      for (let n = 0; n < bytes.length; n++) {
        const result = checkLibrarySymbols('cut', bytes.subarray(0, n));
        for (const e of result.errors) assert.ok(e.code === ErrorCode.INVALID_STRUCTURE || e.code === ErrorCode.MISSING_SYMBOL, e.code);
        if (codes(result).includes(ErrorCode.INVALID_STRUCTURE)) malformed++;
      }
      assert.ok(malformed > bytes.length / 2, `most truncations are malformed (${malformed} of ${bytes.length})`);
      for (let round = 0; round < 300; round++) {
        const garbled = Buffer.from(bytes);
        for (let h = 0; h < 1 + Math.floor(random() * 6); h++) garbled[Math.floor(random() * garbled.length)] = Math.floor(random() * 256);
        for (const e of checkLibrarySymbols('garbled', garbled).errors) assert.ok(e.code.startsWith('E_'));
      }
    }
  });

  it('a trie whose edge points back at its root is refused, not followed forever', () => {
    const bytes = syntheticMachO({ trie: ['_a'] });
    const trieAt = bytes.length - exportTrie(['_a']).length;
    bytes[trieAt + 2 + 3] = 0; // the edge "_a" now leads back to the root
    assert.deepEqual(readLibraryExports(bytes).format, 'mach-o');
    assert.ok('malformed' in readLibraryExports(bytes));
  });

  it('validate reports a Mach-O plugin library missing a symbol as E_MISSING_SYMBOL', async () => {
    const dir = path.join(tempDir(), 'macplug');
    await run('mkdir', ['-p', dir]);
    writeManifest(dir, { name: 'macplug', description: 'd', version: '1.0.0', abi_version: 1 });
    writeFileSync(path.join(dir, `libmacplug.${process.platform === 'darwin' ? 'dylib' : 'so'}`), syntheticMachO({ symbols: machoSymbols(REQUIRED.slice(1)) }));
    const cli = await runCli(['validate', dir, '--json']);
    assert.equal(cli.code, 1);
    assert.deepEqual(JSON.parse(cli.stdout).errors.map((e: { code: string }) => e.code), ['E_MISSING_SYMBOL']);
  });
});
