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

  it('does not read Mach-O or PE libraries and says so with a warning', () => {
    const macho = Buffer.alloc(64);
    macho.writeUInt32BE(0xcffaedfe, 0);
    const pe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(62)]);
    for (const bytes of [macho, pe, Buffer.from('not a library at all')]) {
      const result = checkLibrarySymbols('lib', bytes);
      assert.deepEqual(result.errors, []);
      assert.deepEqual(result.warnings.map((w) => w.code), ['W_SYMBOLS_NOT_CHECKED']);
    }
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
