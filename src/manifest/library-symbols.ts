/**
 * Reads which symbols a shared library exports, from its bytes alone (nothing is loaded or run).
 * ELF: 32- and 64-bit, either byte order, through the section headers' .dynsym/.dynstr, or through
 * PT_DYNAMIC when the section headers are stripped. Mach-O: 32- and 64-bit dylibs and bundles and
 * universal (fat) files, through LC_SYMTAB and the dyld export trie. PE: a DLL's export directory.
 */

import { ABI_SYMBOLS } from '../abi/types.js';
import { ErrorCode } from '../errors.js';
import type { ValidationIssue } from './issue.js';
import { WarningCode, type ValidationWarning } from './vtcode.js';

/** A library format whose exports skillplug reads. */
export type LibraryFormat = 'elf' | 'mach-o' | 'pe';

/** What reading a library's exports found. */
export type LibraryExports =
  | { format: LibraryFormat; exported: string[] }
  | { format: LibraryFormat; malformed: string }
  | { format: 'unknown' };

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

const MH_MAGIC = 0xfeedface;
const MH_MAGIC_64 = 0xfeedfacf;
const MH_CIGAM = 0xcefaedfe;
const MH_CIGAM_64 = 0xcffaedfe;
const FAT_MAGIC = 0xcafebabe;
const FAT_MAGIC_64 = 0xcafebabf;
/** More slices than this in a "fat" header means it is something else with the same magic (a Java class file). */
const MAX_FAT_ARCHS = 32;

/** Recognizes the file format from its first bytes. */
export function libraryFormat(bytes: Buffer): LibraryFormat | 'unknown' {
  if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) return 'elf';
  if (bytes.length >= 4) {
    const magic = bytes.readUInt32BE(0);
    if ([MH_MAGIC, MH_MAGIC_64, MH_CIGAM, MH_CIGAM_64].includes(magic)) return 'mach-o';
    if ((magic === FAT_MAGIC || magic === FAT_MAGIC_64) && bytes.length >= 8 && bytes.readUInt32BE(4) <= MAX_FAT_ARCHS) return 'mach-o';
  }
  if (bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x5a) return 'pe';
  return 'unknown';
}

/** The symbols a library defines and exports, without the C prefix underscore Mach-O adds (never throws: a broken file gives `malformed`). */
export function readLibraryExports(bytes: Buffer): LibraryExports {
  const format = libraryFormat(bytes);
  if (format === 'unknown') return { format };
  try {
    const exported = format === 'elf' ? readElfExports(bytes) : format === 'mach-o' ? readMachOExports(bytes) : readPeExports(bytes);
    return { format, exported };
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

const MH_BUNDLE = 8;
const MH_DYLIB = 6;
const LC_SYMTAB = 0x2;
const LC_DYLD_INFO = 0x22;
const LC_DYLD_INFO_ONLY = 0x80000022;
const LC_DYLD_EXPORTS_TRIE = 0x80000033;
const N_STAB = 0xe0;
const N_PEXT = 0x10;
const N_TYPE = 0x0e;
const N_EXT = 0x01;
const N_ABS = 0x2;
const N_INDR = 0xa;
const N_SECT = 0xe;

/** A universal (fat) file's slices must each export a symbol for it to count: which slice loads depends on the machine. */
function readMachOExports(bytes: Buffer): string[] {
  const magic = bytes.readUInt32BE(0);
  if (magic !== FAT_MAGIC && magic !== FAT_MAGIC_64) return readThinMachOExports(bytes, 0, bytes.length);
  const r = new Reader(bytes, false, false);
  const count = r.u32(4, 'the fat slice count');
  if (count === 0) throw new Malformed('the universal (fat) file holds no slices');
  const wide = magic === FAT_MAGIC_64;
  let common: Set<string> | undefined;
  for (let i = 0; i < count; i++) {
    const at = 8 + i * (wide ? 32 : 20);
    const offset = wide ? r.u64(at + 8, 'a fat slice offset') : r.u32(at + 8, 'a fat slice offset');
    const size = wide ? r.u64(at + 16, 'a fat slice size') : r.u32(at + 12, 'a fat slice size');
    if (offset + size > bytes.length || size < 28) throw new Malformed(`fat slice ${i} (offset ${offset}, ${size} bytes) lies past the end of the ${bytes.length}-byte file (truncated)`);
    const slice = readThinMachOExports(bytes, offset, offset + size);
    common = common === undefined ? new Set(slice) : new Set(slice.filter((name) => common?.has(name)));
  }
  return [...(common ?? [])];
}

function readThinMachOExports(bytes: Buffer, start: number, end: number): string[] {
  const view = bytes.subarray(start, end);
  if (view.length < 4) throw new Malformed('the Mach-O header is truncated');
  const magic = view.readUInt32BE(0);
  const wide = magic === MH_MAGIC_64 || magic === MH_CIGAM_64;
  const little = magic === MH_CIGAM || magic === MH_CIGAM_64;
  if (![MH_MAGIC, MH_MAGIC_64, MH_CIGAM, MH_CIGAM_64].includes(magic)) throw new Malformed(`a fat slice does not start with a Mach-O header (magic 0x${magic.toString(16)})`);
  const r = new Reader(view, wide, little);
  const filetype = r.u32(12, 'filetype');
  if (filetype !== MH_DYLIB && filetype !== MH_BUNDLE) throw new Malformed(`it is a Mach-O file of type ${filetype}, not a dynamic library (MH_DYLIB) or bundle: build it with -dynamiclib`);
  const ncmds = r.u32(16, 'ncmds');
  if (ncmds > MAX_ENTRIES) throw new Malformed(`${ncmds} load commands is impossible`);
  const exported = new Set<string>();
  let at = wide ? 32 : 28;
  for (let i = 0; i < ncmds; i++) {
    const cmd = r.u32(at, 'a load command');
    const size = r.u32(at + 4, 'a load command size');
    if (size < 8) throw new Malformed(`load command ${i} is ${size} bytes long`);
    if (cmd === LC_SYMTAB) {
      const symoff = r.u32(at + 8, 'symoff');
      const nsyms = r.u32(at + 12, 'nsyms');
      const stroff = r.u32(at + 16, 'stroff');
      const strsize = r.u32(at + 20, 'strsize');
      if (nsyms > MAX_ENTRIES) throw new Malformed(`${nsyms} symbols is impossible`);
      if (stroff + strsize > view.length) throw new Malformed('the string table lies past the end of the file (truncated)');
      const entry = wide ? 16 : 12;
      for (let n = 0; n < nsyms; n++) {
        const sym = symoff + n * entry;
        const strx = r.u32(sym, 'a symbol name');
        const type = r.u8(sym + 4, 'a symbol type');
        if ((type & N_STAB) !== 0 || (type & N_EXT) === 0 || (type & N_PEXT) !== 0) continue;
        const kind = type & N_TYPE;
        if (kind !== N_SECT && kind !== N_ABS && kind !== N_INDR) continue;
        if (strx >= strsize) throw new Malformed(`symbol ${n}'s name lies outside the string table`);
        exported.add(r.cstring(stroff + strx, stroff + strsize, 'a symbol name'));
      }
    } else if (cmd === LC_DYLD_INFO || cmd === LC_DYLD_INFO_ONLY) {
      readExportTrie(r, r.u32(at + 40, 'export_off'), r.u32(at + 44, 'export_size'), exported);
    } else if (cmd === LC_DYLD_EXPORTS_TRIE) {
      readExportTrie(r, r.u32(at + 8, 'dataoff'), r.u32(at + 12, 'datasize'), exported);
    }
    at += size;
  }
  // C names carry a leading underscore in Mach-O (`_vtcode_plugin_version`, C++ `__Z…`).
  return [...exported].map((name) => (name.startsWith('_') ? name.slice(1) : name));
}

/** dyld's export trie: a prefix tree whose terminal nodes are exported names. */
function readExportTrie(r: Reader, offset: number, size: number, into: Set<string>): void {
  if (size === 0) return;
  if (offset + size > r.bytes.length) throw new Malformed('the export trie lies past the end of the file (truncated)');
  const end = offset + size;
  const uleb = (pos: { at: number }): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (pos.at >= end) throw new Malformed('a number in the export trie runs past its end');
      const byte = r.bytes[pos.at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
      shift += 7;
      if (shift > 49) throw new Malformed('a number in the export trie is impossibly long');
    }
  };
  const seen = new Set<number>();
  const stack: { node: number; prefix: string }[] = [{ node: 0, prefix: '' }];
  while (stack.length > 0) {
    const { node, prefix } = stack.pop() as { node: number; prefix: string };
    // Each node is visited once: a trie whose edges loop back cannot spin.
    if (seen.has(node)) throw new Malformed('the export trie loops back on itself');
    seen.add(node);
    if (seen.size > MAX_ENTRIES) throw new Malformed('the export trie is impossibly large');
    const pos = { at: offset + node };
    const terminal = uleb(pos);
    if (terminal > 0) into.add(prefix);
    pos.at += terminal;
    if (pos.at >= end) throw new Malformed('an export trie node runs past its end');
    const children = r.bytes[pos.at++] as number;
    for (let i = 0; i < children; i++) {
      const label = r.cstring(pos.at, end, 'an export trie edge');
      pos.at += Buffer.byteLength(label, 'latin1') + 1;
      const child = uleb(pos);
      if (child >= size) throw new Malformed('an export trie edge points past the trie');
      stack.push({ node: child, prefix: prefix + label });
    }
  }
}

const IMAGE_FILE_DLL = 0x2000;
const PE32 = 0x10b;
const PE32_PLUS = 0x20b;

/** A PE DLL's exported names, from its export directory (data directory 0). */
function readPeExports(bytes: Buffer): string[] {
  const r = new Reader(bytes, false, true);
  const pe = r.u32(0x3c, 'e_lfanew');
  if (r.u32(pe, 'the PE signature') !== 0x4550) throw new Malformed('the PE signature is missing (an MS-DOS program, or truncated)');
  const coff = pe + 4;
  const sections = r.u16(coff + 2, 'NumberOfSections');
  const optionalSize = r.u16(coff + 16, 'SizeOfOptionalHeader');
  const characteristics = r.u16(coff + 18, 'Characteristics');
  if ((characteristics & IMAGE_FILE_DLL) === 0) throw new Malformed('it is a PE file but not a DLL: build it as a DLL (-shared, /LD)');
  const optional = coff + 20;
  const magic = r.u16(optional, 'the optional header magic');
  if (magic !== PE32 && magic !== PE32_PLUS) throw new Malformed(`unknown PE optional header magic 0x${magic.toString(16)}`);
  const directories = r.u32(optional + (magic === PE32 ? 92 : 108), 'NumberOfRvaAndSizes');
  if (directories === 0) return [];
  const exportRva = r.u32(optional + (magic === PE32 ? 96 : 112), 'the export directory address');
  if (exportRva === 0) return [];
  const table = optional + optionalSize;
  const toOffset = (rva: number, what: string): number => {
    for (let i = 0; i < sections; i++) {
      const at = table + i * 40;
      const virtualSize = r.u32(at + 8, 'a section size');
      const virtualAddress = r.u32(at + 12, 'a section address');
      const rawSize = r.u32(at + 16, 'a section raw size');
      const rawOffset = r.u32(at + 20, 'a section offset');
      if (rva >= virtualAddress && rva < virtualAddress + Math.max(virtualSize, rawSize)) return rawOffset + (rva - virtualAddress);
    }
    throw new Malformed(`${what} (RVA 0x${rva.toString(16)}) is in no section`);
  };
  const dir = toOffset(exportRva, 'the export directory');
  const names = r.u32(dir + 24, 'NumberOfNames');
  if (names > MAX_ENTRIES) throw new Malformed(`${names} exported names is impossible`);
  const nameTable = names === 0 ? 0 : toOffset(r.u32(dir + 32, 'AddressOfNames'), 'the export name table');
  const exported: string[] = [];
  for (let i = 0; i < names; i++) {
    const name = toOffset(r.u32(nameTable + i * 4, 'an export name address'), 'an export name');
    exported.push(r.cstring(name, bytes.length, 'an export name'));
  }
  return exported;
}

/** The symbols every plugin must export (ABI v1). */
const REQUIRED_SYMBOLS = [ABI_SYMBOLS.version, ABI_SYMBOLS.metadata, ABI_SYMBOLS.execute];

/** A C++-mangled export carrying `symbol` (Itanium `_Z…` or MSVC `?…`), if there is one. */
function mangledForm(symbol: string, exported: readonly string[]): string | undefined {
  return exported.find((s) => (s.startsWith('_Z') || s.startsWith('?')) && s.includes(symbol));
}

/**
 * Checks a library's exports against ABI v1 without loading it: a missing required symbol is
 * `E_MISSING_SYMBOL` (naming the C++-mangled name when that is why), a broken ELF, Mach-O or PE
 * file is `E_INVALID_STRUCTURE`, and a file in none of these formats gets a warning that its
 * symbols were not checked.
 */
export function checkLibrarySymbols(file: string, bytes: Buffer, arch: string = process.arch): { errors: ValidationIssue[]; warnings: ValidationWarning[] } {
  const reading = readLibraryExports(bytes);
  if (reading.format === 'unknown') {
    return {
      errors: [],
      warnings: [{ code: WarningCode.SYMBOLS_NOT_CHECKED, message: `${file} is not a library format skillplug reads (ELF, Mach-O, PE); its exported symbols were not checked. Loading it checks them.` }],
    };
  }
  if ('malformed' in reading) {
    const kind = { elf: 'ELF shared library', 'mach-o': 'Mach-O dynamic library', pe: 'PE DLL' }[reading.format];
    const fix = { elf: 'Rebuild it with -shared -fPIC.', 'mach-o': 'Rebuild it with -dynamiclib.', pe: 'Rebuild it as a DLL.' }[reading.format];
    return { errors: [{ code: ErrorCode.INVALID_STRUCTURE, message: `${file} is not a valid ${kind}: ${reading.malformed}. ${fix}` }], warnings: [] };
  }
  const errors: ValidationIssue[] = [];
  const built = reading.format === 'elf' ? elfArch(bytes) : undefined;
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
