/**
 * Reads which symbols a shared library exports, from its bytes alone (nothing is loaded or run).
 * ELF only: 32- and 64-bit, either byte order, through the section headers' .dynsym/.dynstr, or
 * through PT_DYNAMIC when the section headers are stripped. Mach-O and PE are recognized, not read.
 */

import { ABI_SYMBOLS } from '../abi/types.js';
import { ErrorCode } from '../errors.js';
import type { ValidationIssue } from './issue.js';
import { WarningCode, type ValidationWarning } from './vtcode.js';

/** What reading a library's exports found. */
export type LibraryExports =
  | { format: 'elf'; exported: string[] }
  | { format: 'elf'; malformed: string }
  | { format: 'mach-o' | 'pe' | 'unknown' };

class Malformed extends Error {}

const SHT_STRTAB = 3;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_HASH = 4;
const DT_STRTAB = 5;
const DT_SYMTAB = 6;
const DT_STRSZ = 10;
const DT_SYMENT = 11;
const DT_GNU_HASH = 0x6ffffef5;
const STB_GLOBAL = 1;
const STB_WEAK = 2;
const STB_GNU_UNIQUE = 10;
const STV_HIDDEN = 2;
const STV_INTERNAL = 1;
/** No real library has more; a count beyond it means a garbled header. */
const MAX_ENTRIES = 1 << 24;

/** Bounds-checked reads in one byte order and word size; every failure is a {@link Malformed}. */
class Reader {
  constructor(
    readonly bytes: Buffer,
    readonly wide: boolean,
    readonly little: boolean,
  ) {}

  private check(offset: number, size: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > this.bytes.length) {
      throw new Malformed(`${what} at offset ${offset} lies past the end of the ${this.bytes.length}-byte file (truncated or garbled)`);
    }
  }

  u8(offset: number, what: string): number {
    this.check(offset, 1, what);
    return this.bytes[offset] as number;
  }

  u16(offset: number, what: string): number {
    this.check(offset, 2, what);
    return this.little ? this.bytes.readUInt16LE(offset) : this.bytes.readUInt16BE(offset);
  }

  u32(offset: number, what: string): number {
    this.check(offset, 4, what);
    return this.little ? this.bytes.readUInt32LE(offset) : this.bytes.readUInt32BE(offset);
  }

  u64(offset: number, what: string): number {
    this.check(offset, 8, what);
    const value = this.little ? this.bytes.readBigUInt64LE(offset) : this.bytes.readBigUInt64BE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Malformed(`${what} at offset ${offset} is an impossible value (${value})`);
    return Number(value);
  }

  /** A word: 8 bytes in ELF64, 4 in ELF32. */
  word(offset: number, what: string): number {
    return this.wide ? this.u64(offset, what) : this.u32(offset, what);
  }

  /** A NUL-terminated string starting at `offset`, not reaching past `end`. */
  cstring(offset: number, end: number, what: string): string {
    this.check(offset, 1, what);
    const stop = this.bytes.indexOf(0, offset);
    if (stop < 0 || stop >= Math.min(end, this.bytes.length)) throw new Malformed(`${what} at offset ${offset} is not NUL-terminated inside its string table`);
    return this.bytes.toString('latin1', offset, stop);
  }
}

interface Table {
  symOffset: number;
  symCount: number;
  symEntSize: number;
  strOffset: number;
  strEnd: number;
}

/** Recognizes the file format from its first bytes. */
export function libraryFormat(bytes: Buffer): 'elf' | 'mach-o' | 'pe' | 'unknown' {
  if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) return 'elf';
  if (bytes.length >= 4) {
    const magic = bytes.readUInt32BE(0);
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic)) return 'mach-o';
  }
  if (bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x5a) return 'pe';
  return 'unknown';
}

/** The symbols a library defines and exports (never throws: a broken ELF gives `malformed`). */
export function readLibraryExports(bytes: Buffer): LibraryExports {
  const format = libraryFormat(bytes);
  if (format !== 'elf') return { format };
  try {
    return { format, exported: readElfExports(bytes) };
  } catch (err) {
    if (err instanceof Malformed) return { format, malformed: err.message };
    throw err;
  }
}

function readElfExports(bytes: Buffer): string[] {
  if (bytes.length < 16) throw new Malformed('the ELF identification is truncated');
  const elfClass = bytes[4];
  const data = bytes[5];
  if (elfClass !== 1 && elfClass !== 2) throw new Malformed(`unknown ELF class ${elfClass} (neither 32- nor 64-bit)`);
  if (data !== 1 && data !== 2) throw new Malformed(`unknown ELF byte order ${data}`);
  const r = new Reader(bytes, elfClass === 2, data === 1);
  const type = r.u16(16, 'e_type');
  if (type !== 3) throw new Malformed(`it is an ELF file of type ${type}, not a shared library (ET_DYN): build it with -shared`);
  const table = sectionTable(r) ?? dynamicTable(r);
  if (!table) throw new Malformed('it has no dynamic symbol table (.dynsym or PT_DYNAMIC), so it exports nothing');
  const exported: string[] = [];
  for (let i = 1; i < table.symCount; i++) {
    const at = table.symOffset + i * table.symEntSize;
    const name = r.u32(at, 'a symbol name');
    const info = r.u8(at + (r.wide ? 4 : 12), 'a symbol info');
    const other = r.u8(at + (r.wide ? 5 : 13), 'a symbol visibility');
    const shndx = r.u16(at + (r.wide ? 6 : 14), 'a symbol section');
    const bind = info >> 4;
    const visibility = other & 3;
    if (shndx === 0 || (bind !== STB_GLOBAL && bind !== STB_WEAK && bind !== STB_GNU_UNIQUE)) continue;
    if (visibility === STV_HIDDEN || visibility === STV_INTERNAL) continue;
    if (table.strOffset + name >= table.strEnd) throw new Malformed(`symbol ${i}'s name lies outside the dynamic string table`);
    exported.push(r.cstring(table.strOffset + name, table.strEnd, 'a symbol name'));
  }
  return exported;
}

/** The dynamic symbol table through the section headers, or undefined when there are none. */
function sectionTable(r: Reader): Table | undefined {
  const shoff = r.word(r.wide ? 40 : 32, 'e_shoff');
  const shentsize = r.u16(r.wide ? 58 : 46, 'e_shentsize');
  let shnum = r.u16(r.wide ? 60 : 48, 'e_shnum');
  if (shoff === 0) return undefined;
  const minEntry = r.wide ? 64 : 40;
  if (shentsize < minEntry) throw new Malformed(`e_shentsize ${shentsize} is smaller than a section header (${minEntry})`);
  // Extended numbering: the count lives in section 0's sh_size.
  if (shnum === 0) shnum = r.word(shoff + (r.wide ? 32 : 20), 'the extended section count');
  if (shnum > MAX_ENTRIES) throw new Malformed(`${shnum} section headers is impossible`);
  const header = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      type: r.u32(at + 4, 'sh_type'),
      offset: r.word(at + (r.wide ? 24 : 16), 'sh_offset'),
      size: r.word(at + (r.wide ? 32 : 20), 'sh_size'),
      link: r.u32(at + (r.wide ? 40 : 24), 'sh_link'),
      entsize: r.word(at + (r.wide ? 56 : 36), 'sh_entsize'),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const section = header(i);
    if (section.type !== SHT_DYNSYM) continue;
    if (section.link >= shnum) throw new Malformed(`.dynsym links to section ${section.link} of ${shnum}`);
    const strings = header(section.link);
    if (strings.type !== SHT_STRTAB) throw new Malformed('.dynsym does not link to a string table');
    const entsize = section.entsize || (r.wide ? 24 : 16);
    if (entsize < (r.wide ? 24 : 16)) throw new Malformed(`.dynsym entries of ${entsize} bytes are too small`);
    const symCount = Math.floor(section.size / entsize);
    if (section.offset + symCount * entsize > r.bytes.length) throw new Malformed('.dynsym lies past the end of the file (truncated)');
    if (strings.offset + strings.size > r.bytes.length) throw new Malformed('.dynstr lies past the end of the file (truncated)');
    return { symOffset: section.offset, symCount, symEntSize: entsize, strOffset: strings.offset, strEnd: strings.offset + strings.size };
  }
  return undefined;
}

/** The dynamic symbol table through PT_DYNAMIC (for libraries whose section headers are stripped). */
function dynamicTable(r: Reader): Table | undefined {
  const phoff = r.word(r.wide ? 32 : 28, 'e_phoff');
  const phentsize = r.u16(r.wide ? 54 : 42, 'e_phentsize');
  const phnum = r.u16(r.wide ? 56 : 44, 'e_phnum');
  if (phoff === 0 || phnum === 0) return undefined;
  if (phentsize < (r.wide ? 56 : 32)) throw new Malformed(`e_phentsize ${phentsize} is smaller than a program header`);
  const loads: { offset: number; vaddr: number; filesz: number }[] = [];
  let dynamic: { offset: number; filesz: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = r.u32(at, 'p_type');
    const offset = r.word(at + (r.wide ? 8 : 4), 'p_offset');
    const vaddr = r.word(at + (r.wide ? 16 : 8), 'p_vaddr');
    const filesz = r.word(at + (r.wide ? 32 : 16), 'p_filesz');
    if (type === PT_LOAD) loads.push({ offset, vaddr, filesz });
    if (type === PT_DYNAMIC) dynamic = { offset, filesz };
  }
  if (!dynamic) return undefined;
  const toOffset = (address: number, what: string): number => {
    const load = loads.find((l) => address >= l.vaddr && address < l.vaddr + l.filesz);
    if (!load) throw new Malformed(`${what} (address 0x${address.toString(16)}) is in no loaded segment`);
    return load.offset + (address - load.vaddr);
  };
  const entry = r.wide ? 16 : 8;
  const tags = new Map<number, number>();
  for (let at = dynamic.offset; at + entry <= dynamic.offset + dynamic.filesz; at += entry) {
    const tag = r.word(at, 'd_tag');
    if (tag === 0) break;
    if (!tags.has(tag)) tags.set(tag, r.word(at + entry / 2, 'd_val'));
  }
  const symtab = tags.get(DT_SYMTAB);
  const strtab = tags.get(DT_STRTAB);
  const strsz = tags.get(DT_STRSZ);
  if (symtab === undefined || strtab === undefined || strsz === undefined) return undefined;
  const symEntSize = tags.get(DT_SYMENT) ?? (r.wide ? 24 : 16);
  if (symEntSize < (r.wide ? 24 : 16)) throw new Malformed(`DT_SYMENT ${symEntSize} is too small`);
  const symOffset = toOffset(symtab, 'DT_SYMTAB');
  const strOffset = toOffset(strtab, 'DT_STRTAB');
  let symCount: number;
  const hash = tags.get(DT_HASH);
  const gnuHash = tags.get(DT_GNU_HASH);
  if (hash !== undefined) symCount = r.u32(toOffset(hash, 'DT_HASH') + 4, 'the hash table chain count');
  else if (gnuHash !== undefined) symCount = gnuHashCount(r, toOffset(gnuHash, 'DT_GNU_HASH'));
  else if (strOffset > symOffset) symCount = Math.floor((strOffset - symOffset) / symEntSize);
  else throw new Malformed('PT_DYNAMIC gives no way to count the dynamic symbols');
  if (symCount > MAX_ENTRIES) throw new Malformed(`${symCount} dynamic symbols is impossible`);
  return { symOffset, symCount, symEntSize, strOffset, strEnd: strOffset + strsz };
}

// The GNU hash table does not store the symbol count: it is one past the last symbol of the longest-indexed chain.
function gnuHashCount(r: Reader, at: number): number {
  const nbuckets = r.u32(at, 'the GNU hash bucket count');
  const symoffset = r.u32(at + 4, 'the GNU hash symbol offset');
  const bloomSize = r.u32(at + 8, 'the GNU hash bloom size');
  if (nbuckets > MAX_ENTRIES || bloomSize > MAX_ENTRIES) throw new Malformed('the GNU hash table header is impossible');
  const buckets = at + 16 + bloomSize * (r.wide ? 8 : 4);
  let last = 0;
  for (let i = 0; i < nbuckets; i++) last = Math.max(last, r.u32(buckets + i * 4, 'a GNU hash bucket'));
  if (last < symoffset) return symoffset;
  const chains = buckets + nbuckets * 4;
  for (let i = last; i < symoffset + MAX_ENTRIES; i++) {
    if ((r.u32(chains + (i - symoffset) * 4, 'a GNU hash chain') & 1) === 1) return i + 1;
  }
  throw new Malformed('a GNU hash chain never ends');
}

/** The symbols every plugin must export (ABI v1). */
const REQUIRED_SYMBOLS = [ABI_SYMBOLS.version, ABI_SYMBOLS.metadata, ABI_SYMBOLS.execute];

/** A C++-mangled export carrying `symbol` (Itanium `_Z…` or MSVC `?…`), if there is one. */
function mangledForm(symbol: string, exported: readonly string[]): string | undefined {
  return exported.find((s) => (s.startsWith('_Z') || s.startsWith('?')) && s.includes(symbol));
}

/**
 * Checks a library's exports against ABI v1 without loading it: a missing required symbol is
 * `E_MISSING_SYMBOL` (naming the C++-mangled name when that is why), a broken ELF is
 * `E_INVALID_STRUCTURE`, and a non-ELF library gets a warning that its symbols were not checked.
 */
export function checkLibrarySymbols(file: string, bytes: Buffer, arch: string = process.arch): { errors: ValidationIssue[]; warnings: ValidationWarning[] } {
  const reading = readLibraryExports(bytes);
  if (reading.format !== 'elf') {
    const what = reading.format === 'unknown' ? 'not a format skillplug recognizes' : `a ${reading.format === 'pe' ? 'PE (Windows)' : 'Mach-O (macOS)'} library`;
    return {
      errors: [],
      warnings: [{ code: WarningCode.SYMBOLS_NOT_CHECKED, message: `${file} is ${what}; its exported symbols were not checked (skillplug reads ELF only). Loading it checks them.` }],
    };
  }
  if ('malformed' in reading) {
    return { errors: [{ code: ErrorCode.INVALID_STRUCTURE, message: `${file} is not a valid ELF shared library: ${reading.malformed}. Rebuild it with -shared -fPIC.` }], warnings: [] };
  }
  const errors: ValidationIssue[] = [];
  const built = elfArch(bytes);
  if (ELF_ARCH[arch] && built !== undefined && built !== arch) {
    errors.push({ code: ErrorCode.INVALID_STRUCTURE, message: `${file} is built for ${built}, but this machine runs ${arch}: it cannot load. Rebuild it here (or cross-compile for ${arch}).` });
  }
  const exported = new Set(reading.exported);
  for (const symbol of REQUIRED_SYMBOLS) {
    if (exported.has(symbol)) continue;
    const mangled = mangledForm(symbol, reading.exported);
    errors.push({
      code: ErrorCode.MISSING_SYMBOL,
      message: mangled
        ? `${file} does not export ${symbol}: it exports the C++-mangled ${mangled} instead. Declare the plugin functions extern "C" (or include vtcode_plugin.h, which does) and rebuild.`
        : `${file} does not export ${symbol}, which every plugin must. Export it with C linkage (see vtcode_plugin.h) and rebuild.`,
    });
  }
  return { errors, warnings: [] };
}

/** ELF class, byte order and e_machine of each Node architecture skillplug runs on. */
const ELF_ARCH: Record<string, { wide: boolean; little: boolean; machine: number }> = {
  x64: { wide: true, little: true, machine: 62 },
  arm64: { wide: true, little: true, machine: 183 },
  ia32: { wide: false, little: true, machine: 3 },
  arm: { wide: false, little: true, machine: 40 },
  riscv64: { wide: true, little: true, machine: 243 },
  ppc64: { wide: true, little: true, machine: 21 },
  s390x: { wide: true, little: false, machine: 22 },
};

/** The Node architecture an ELF file is built for, `another (…)` when none of ours, undefined when unreadable. */
function elfArch(bytes: Buffer): string | undefined {
  if (bytes.length < 20) return undefined;
  const wide = bytes[4] === 2;
  const little = bytes[5] === 1;
  const machine = little ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
  const match = Object.entries(ELF_ARCH).find(([, a]) => a.wide === wide && a.little === little && a.machine === machine);
  return match ? match[0] : `another architecture (ELF${wide ? 64 : 32} ${little ? 'LE' : 'BE'}, machine ${machine})`;
}
