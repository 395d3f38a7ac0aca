// A strict parser for the TOML subset the docs' client configs use (no dependency for a test helper):
// [table] and [[array.of.tables]] headers, bare or dotted keys, basic strings, integers, booleans,
// one-line arrays and inline tables. Anything else throws, so a typo in a snippet fails its test.

type Value = string | number | boolean | Value[] | { [key: string]: Value };
type Table = { [key: string]: Value };

class Cursor {
  at = 0;
  constructor(
    readonly text: string,
    readonly line: number,
  ) {}

  fail(what: string): never {
    throw new Error(`TOML line ${this.line}: ${what} at column ${this.at + 1}: ${this.text}`);
  }

  skipSpace(): void {
    while (this.text[this.at] === ' ' || this.text[this.at] === '\t') this.at++;
  }

  /** The next character that is not a space or tab. */
  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.at];
  }

  eat(char: string): boolean {
    this.skipSpace();
    if (this.text[this.at] !== char) return false;
    this.at++;
    return true;
  }

  done(): boolean {
    this.skipSpace();
    return this.at >= this.text.length || this.text[this.at] === '#';
  }
}

function key(c: Cursor): string[] {
  const parts: string[] = [];
  do {
    c.skipSpace();
    if (c.text[c.at] === '"') parts.push(basicString(c));
    else {
      const bare = /^[A-Za-z0-9_-]+/.exec(c.text.slice(c.at));
      if (!bare) c.fail('expected a key');
      parts.push(bare[0]);
      c.at += bare[0].length;
    }
  } while (c.eat('.'));
  return parts;
}

function basicString(c: Cursor): string {
  const match = /^"((?:[^"\\]|\\.)*)"/.exec(c.text.slice(c.at));
  if (!match) c.fail('expected a string');
  c.at += match[0].length;
  return JSON.parse(`"${match[1]}"`) as string;
}

function value(c: Cursor): Value {
  c.skipSpace();
  const rest = c.text.slice(c.at);
  if (rest.startsWith('"')) return basicString(c);
  if (rest.startsWith('[')) {
    c.at++;
    const items: Value[] = [];
    while (!c.eat(']')) {
      items.push(value(c));
      if (!c.eat(',') && c.peek() !== ']') c.fail('expected , or ]');
    }
    return items;
  }
  if (rest.startsWith('{')) {
    c.at++;
    const table: Table = {};
    while (!c.eat('}')) {
      const path = key(c);
      if (!c.eat('=')) c.fail('expected =');
      assign(table, path, value(c), c);
      if (!c.eat(',') && c.peek() !== '}') c.fail('expected , or }');
    }
    return table;
  }
  const bool = /^(true|false)\b/.exec(rest);
  if (bool) {
    c.at += bool[0].length;
    return bool[1] === 'true';
  }
  const int = /^[+-]?\d[\d_]*/.exec(rest);
  if (int) {
    c.at += int[0].length;
    return Number(int[0].replaceAll('_', ''));
  }
  return c.fail('expected a value');
}

function isTable(v: Value | undefined): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function assign(table: Table, path: string[], v: Value, c: Cursor): void {
  let at = table;
  for (const part of path.slice(0, -1)) {
    at[part] ??= {};
    const next = at[part];
    if (!isTable(next)) c.fail(`${part} is not a table`);
    at = next;
  }
  const last = path.at(-1) as string;
  if (last in at) c.fail(`${path.join('.')} is defined twice`);
  at[last] = v;
}

/** Parses the TOML subset; throws naming the line on anything outside it. */
export function parseToml(text: string): Table {
  const root: Table = {};
  let current = root;
  text.split('\n').forEach((raw, i) => {
    const c: Cursor = new Cursor(raw, i + 1);
    if (c.done()) return;
    if (c.text.slice(c.at).startsWith('[[')) {
      c.at += 2;
      const path = key(c);
      if (!c.eat(']') || !c.eat(']') || !c.done()) c.fail('expected ]]');
      let at = root;
      for (const part of path.slice(0, -1)) {
        at[part] ??= {};
        at = at[part] as Table;
      }
      const last = path.at(-1) as string;
      at[last] ??= [];
      const list = at[last];
      if (!Array.isArray(list)) c.fail(`${path.join('.')} is not an array of tables`);
      current = {};
      list.push(current);
      return;
    }
    if (c.eat('[')) {
      const path = key(c);
      if (!c.eat(']') || !c.done()) c.fail('expected ]');
      let at = root;
      for (const part of path) {
        at[part] ??= {};
        const next = at[part];
        if (!isTable(next)) c.fail(`${part} is not a table`);
        at = next;
      }
      current = at;
      return;
    }
    const path = key(c);
    if (!c.eat('=')) c.fail('expected =');
    assign(current, path, value(c), c);
    if (!c.done()) c.fail('unexpected text after the value');
  });
  return root;
}
