/**
 * Snapshot JSON by parts: the services write their snapshot with every batch, and most of
 * it is per symbol (marks, positions, tick-gate entries, ...) and unchanged since the last
 * batch. These helpers keep each entry's text until its value changes, so a snapshot costs
 * a join of cached strings instead of encoding every open position again, while the text
 * stays exactly what JSON.stringify of the plain snapshot object writes.
 */
import { collectingParts } from './snapshot-parts.js';

/**
 * False for keys a plain object does not keep in insertion order or at all: array indices
 * (listed first, ascending) and `__proto__` (an assignment sets the prototype). Entries
 * with such a key make the callers fall back to JSON.stringify of the definition.
 */
export function isOrderedKey(key: string): boolean {
  if (key === '__proto__') return false;
  const first = key.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return true; // not starting with a digit: never an index
  if (!/^(?:0|[1-9]\d*)$/.test(key)) return true;
  return Number(key) >= 2 ** 32 - 1;
}

/**
 * A Map that counts its changes (set, delete, clear; `touch` for a value changed in place),
 * so the text of an unchanged map is reused whole (most per-symbol maps do not change
 * between two batches: prices and marks change on ticks only).
 */
export class VersionedMap<K, V> extends Map<K, V> {
  #version = 0;

  get version(): number {
    return this.#version;
  }

  override set(key: K, value: V): this {
    this.#version += 1;
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.#version += 1;
    return super.delete(key);
  }

  override clear(): void {
    this.#version += 1;
    super.clear();
  }

  /** A value of the map was changed in place. */
  touch(): void {
    this.#version += 1;
  }
}

/**
 * The members (`"key":value`, comma-separated) of a Map's entries as JSON.stringify writes
 * them for `Object.fromEntries` of the map, each entry's text made once per value. `same`
 * says when a cached value still holds (identity by default; a structural test for values
 * mutated in place). `encode` gives the entry's JSON text (JSON.stringify of its value).
 */
export class MembersCache<V> {
  private readonly cache = new Map<string, { value: V; text: string }>();
  /** Holds the value of an entry by content when `same` compares content (values mutated in place). */
  constructor(
    private readonly encode: (value: V) => string,
    private readonly same: (a: V, b: V) => boolean = Object.is,
    private readonly copy: (value: V) => V = (value) => value,
  ) {}

  /** The last map and version seen, with its members: a VersionedMap unchanged since gives them again. */
  private seen: { map: ReadonlyMap<string, V>; version: number; members: string } | null = null;

  /** The comma-joined members; null when a key is not kept in order by a plain object (see isOrderedKey). */
  members(map: ReadonlyMap<string, V>): string | null {
    return this.collected('m', map) ?? this.plainMembers(map);
  }

  /** `{members}`, or JSON.stringify(fallback()) when a key is not kept in order by a plain object. */
  object(map: ReadonlyMap<string, V>, fallback: () => unknown): string {
    const marker = this.collected('o', map);
    if (marker !== null) return marker;
    const members = this.plainMembers(map);
    return members === null ? JSON.stringify(fallback()) : `{${members}}`;
  }

  private plainMembers(map: ReadonlyMap<string, V>): string | null {
    const version = map instanceof VersionedMap ? (map.version as number) : -1;
    if (version >= 0 && this.seen !== null && this.seen.map === map && this.seen.version === version) return this.seen.members;
    const parts: string[] = [];
    for (const [key, value] of map) {
      const text = this.entryText(key, value);
      if (text === null) return null;
      parts.push(text);
    }
    this.dropGone(map);
    const members = parts.join(',');
    this.seen = version >= 0 ? { map, version, members } : null;
    return members;
  }

  /** The entry's `"key":value` text, made when it is new or changed; null for a key a plain object does not keep in order. */
  private entryText(key: string, value: V): string | null {
    let entry = this.cache.get(key);
    if (entry === undefined || !this.same(entry.value, value)) {
      if (!isOrderedKey(key)) return null;
      entry = { value: this.copy(value), text: `${JSON.stringify(key)}:${this.encode(value)}` };
      this.cache.set(key, entry);
    }
    return entry.text;
  }

  /** Every key of the map is cached now, so a larger cache holds keys the map dropped. */
  private dropGone(map: ReadonlyMap<string, V>): void {
    if (this.cache.size > map.size) for (const key of this.cache.keys()) if (!map.has(key)) this.cache.delete(key);
  }

  /** While a snapshot is stored by parts (core/snapshot-parts.ts): the map as one collection of it, its marker; else null. */
  private collected(kind: 'o' | 'm', map: ReadonlyMap<string, V>): string | null {
    const tracker = collectingParts();
    if (tracker === null) return null;
    const version = map instanceof VersionedMap ? (map.version as number) : -1;
    const marker = tracker.collection(this, kind, map, version, (key, value) => this.entryText(key, value));
    if (marker !== null) this.dropGone(map);
    return marker;
  }
}

/**
 * `[items]`: the texts of a Map's values in its order (`textOf` gives each one's text,
 * which the caller keeps until the value changes). While a snapshot is stored by parts,
 * the map is one collection of it and this gives its marker.
 */
export function itemsJson<V>(map: ReadonlyMap<string, V>, textOf: (value: V) => string): string {
  const marker = collectingParts()?.collection(map, 'a', map, -1, (_key, value) => textOf(value)) ?? null;
  if (marker !== null) return marker;
  const parts: string[] = [];
  for (const value of map.values()) parts.push(textOf(value));
  return `[${parts.join(',')}]`;
}

/** `"\u0000name"`: the marker that stands for the part `name` while the rest of a snapshot is serialised. */
export function partMarker(name: string): string {
  return `\u0000${name}`;
}

const MARKER_JSON = /"\\u0000([A-Za-z_]+)"/g;

/**
 * Puts each part's JSON text in place of its marker (see `partMarker`) in `shell`. Null
 * when the markers are not found exactly once each (a string of the state that happens to
 * equal one).
 */
export function spliceParts(shell: string, parts: Readonly<Record<string, () => string>>): string | null {
  const seen = new Set<string>();
  let bad = false;
  const out = shell.replace(MARKER_JSON, (match, name: string) => {
    const part = Object.hasOwn(parts, name) ? parts[name] : undefined;
    if (part === undefined || seen.has(name)) {
      bad = true;
      return match;
    }
    seen.add(name);
    return part();
  });
  return bad || seen.size !== Object.keys(parts).length ? null : out;
}

/**
 * Exactly JSON.stringify(whole()), made from parts whose text the caller keeps: `shape`
 * gets a marker for each part (named by the keys of `parts`; typed `never` so it fits any
 * field, though it is a string) and returns the snapshot object with them in the parts'
 * places; the markers' JSON is then replaced by the parts' texts. When a string of the
 * state equals a marker, JSON.stringify(whole()) it is.
 */
export function jsonByParts<K extends string>(parts: Readonly<Record<K, () => string>>, shape: (markers: Readonly<Record<K, never>>) => unknown, whole: () => unknown): string {
  const markers: Record<string, string> = {};
  for (const name of Object.keys(parts)) markers[name] = partMarker(name);
  return spliceParts(JSON.stringify(shape(markers as unknown as Record<K, never>)), parts) ?? JSON.stringify(whole());
}
