// Maps and sets whose entries come and go all the time (one per call in flight), kept young for V8's
// garbage collector. Imports nothing of skillplug's, so every layer can use them.
//
// Why: V8 rehashes a Map's or Set's table (every few dozen insertions when entries come and go) into a
// new table of the old table's own generation, and the obsolete table keeps the entries it held. Once a
// long-lived table has been promoted to the old generation, every rehash leaves old-space garbage that
// holds calls in flight, and through them their promises, closures and payloads, alive across every
// scavenge until the next mark-compact. Measured on an isolated plugin whose tables had aged (64 calls
// in flight): 42% of the young generation survived each scavenge (1.6% with young tables), scavenges
// took 8.5 ms instead of 1, and a mark-compact came every ~200 ms. A table moves to a new Map once
// FRESH_AFTER_INSERTS insertions have happened in the whole process since it was made: counted per table,
// each of 32 plugins' tables would see 1/32 of the calls and live long enough to grow old again.

/** Insertions, process-wide, after which a table's entries move to a new one (a copy of the few in flight). */
export const FRESH_AFTER_INSERTS = 256;

// Insertions into every churn table of this process so far (a float: exact far beyond any run's count).
let insertsSoFar = 0;

/** A Map for entries added and deleted continuously; iteration keeps insertion order across refreshes. */
export class ChurnMap<K, V> {
  private map = new Map<K, V>();
  // The process-wide insertion count when this table was made.
  private born = insertsSoFar;

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
    if (++insertsSoFar - this.born >= FRESH_AFTER_INSERTS) {
      this.born = insertsSoFar;
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
    this.born = insertsSoFar;
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
