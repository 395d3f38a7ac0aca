// Maps and sets whose entries come and go all the time (one per call in flight), kept young for V8's
// garbage collector. Imports nothing of skillplug's, so every layer can use them.
//
// Why: V8 rehashes a Map's or Set's table (every few dozen insertions when entries come and go) into a
// new table of the old table's own generation, and the obsolete table keeps the entries it held. Once a
// long-lived table has been promoted to the old generation, every rehash leaves old-space garbage that
// holds calls in flight, and through them their promises, closures and payloads, alive across every
// scavenge until the next mark-compact. Measured on an isolated plugin whose tables had aged (64 calls
// in flight): 44% of the young generation survived each scavenge (1% with young tables), a mark-compact
// every ~200 ms, and 9-10 µs per call instead of 5-7. A new Map or Set every FRESH_AFTER_INSERTS
// insertions starts a young table again, so the tables that churn never live long enough to grow old.

/** Insertions after which the entries move to a new table (a copy of the few in flight). */
export const FRESH_AFTER_INSERTS = 256;

/** A Map for entries added and deleted continuously; iteration keeps insertion order across refreshes. */
export class ChurnMap<K, V> {
  private map = new Map<K, V>();
  private inserts = 0;

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): this {
    this.map.set(key, value);
    if (++this.inserts >= FRESH_AFTER_INSERTS) {
      this.inserts = 0;
      this.map = new Map(this.map);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  /** The values in insertion order. An iterator reads the table of the moment: change nothing while iterating. */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  clear(): void {
    this.inserts = 0;
    this.map = new Map();
  }
}

/** A Set for members added and deleted continuously; iteration keeps insertion order across refreshes. */
export class ChurnSet<T> {
  // Each member is its own value, so the map's values are the members in order.
  private readonly members = new ChurnMap<T, T>();

  get size(): number {
    return this.members.size;
  }

  has(value: T): boolean {
    return this.members.has(value);
  }

  add(value: T): this {
    this.members.set(value, value);
    return this;
  }

  delete(value: T): boolean {
    return this.members.delete(value);
  }

  /** The members in insertion order. An iterator reads the table of the moment: change nothing while iterating. */
  values(): IterableIterator<T> {
    return this.members.values();
  }
}
