/**
 * A snapshot stored by parts (issue 20): a commit writes only the parts that changed since
 * the last commit that landed, so its bytes follow the changes, not the size of the book.
 *
 * The stored form is a hash (docs/architecture.md, "Snapshots by parts"):
 *   `shell`          the snapshot's JSON with a marker (`"\u0001o12"`) in place of each
 *                    per-entry collection (core/json-cache.ts: a MembersCache's map, a
 *                    ledger's positions, risk's in-flight orders);
 *   `<id>:<key>`     one entry of collection <id>: `<seq> <text>`, the text as it stands
 *                    in the joined snapshot, seq its place among the collection's entries;
 *   `count`          how many fields the hash holds besides this one: parts lost while
 *                    the service ran (the key deleted under it) make the snapshot unusable
 *                    (a restart rebuilds from the streams), never a wrong one;
 *   `whole`          instead of all the above, the whole JSON (when the state holds a
 *                    string equal to a marker, or a key a plain object would reorder).
 * `assembleParts` puts them back together into exactly the text `snapshotJson()` gives,
 * so restoring reads the same JSON as from a snapshot stored whole.
 *
 * Pure: the host hands the change (`PartsChange`) to the bus and tells the tracker when
 * it landed.
 */

/** What one commit writes to the snapshot's hash. */
export interface PartsChange {
  /** true: the key is deleted first (whatever it held: a whole snapshot, older parts), then `set` written. */
  readonly replace: boolean;
  /** Field, value, field, value, ... (HSET's arguments). */
  readonly set: readonly string[];
  /** Fields to delete (HDEL); empty when `replace`. */
  readonly del: readonly string[];
}

/** A stored snapshot as the bus reads it: a string (the whole JSON, every version before parts) or a hash's fields. */
export type StoredState = { readonly value: string } | { readonly fields: ReadonlyMap<string, string> };

/** `o`: `{members}` of an object; `a`: `[items]` of an array; `m`: the members alone (inside braces the caller writes). */
export type CollectionKind = 'o' | 'a' | 'm';

const MARKER = /"\\u0001([oam])(\d+)"/g;

function markerOf(kind: CollectionKind, id: number): string {
  return `"\\u0001${kind}${id}"`;
}

interface Committed {
  map: ReadonlyMap<string, unknown>;
  version: number;
  items: Map<string, { text: string; seq: number }>;
  maxSeq: number;
}

interface Pending {
  id: number;
  kind: CollectionKind;
  map: ReadonlyMap<string, unknown>;
  version: number;
  sets: { key: string; text: string; seq: number }[];
  dels: string[];
  maxSeq: number;
}

/** The tracker whose snapshot is being made (snapshots are made synchronously, one at a time). */
let active: PartsTracker | null = null;

function activate(tracker: PartsTracker | null): void {
  active = tracker;
}

/** The tracker collecting parts right now, if any: collections ask it for a marker (json-cache.ts). */
export function collectingParts(): PartsTracker | null {
  return active;
}

/**
 * What the store holds, as of the last commit that landed, and the change the next commit
 * writes. Its memory is the snapshot's entries (their texts are shared with the caches
 * that made them); the pending change is dropped by the next `build`, so a commit that
 * failed is simply made again from the last one that landed.
 */
export class PartsTracker {
  readonly #ids = new WeakMap<object, number>();
  #nextId = 0;
  /** null: nothing known to be stored (start, or after a whole snapshot): the next commit replaces. */
  #committed: { shell: string; collections: Map<number, Committed>; count: number } | null = null;
  #pending: { shell: string; collections: Map<number, Pending>; replace: boolean; count: number; whole?: true } | null = null;
  /** Collections met while the current snapshot is made. */
  #building: Map<number, Pending> | null = null;
  #full = false;

  /**
   * The change that brings the store from the last landed commit to `json()`'s snapshot
   * (`json` makes the snapshot text; while it runs, collections give markers instead).
   */
  build(json: () => string): PartsChange {
    this.#pending = null;
    const replace = this.#committed === null;
    let made = this.#collect(json, replace);
    if (made === null) return this.#whole(json);
    if (!replace && [...this.#committed!.collections.keys()].some((id) => !made!.collections.has(id))) {
      // A collection is gone (its owner was replaced: a restore, a reset): write it all again.
      made = this.#collect(json, true);
      if (made === null) return this.#whole(json);
    }
    const set: string[] = [];
    const del: string[] = [];
    if (made.replace || made.shell !== this.#committed?.shell) set.push('shell', made.shell);
    let count = 1; // the shell
    for (const pending of made.collections.values()) {
      const stored = made.replace ? undefined : this.#committed?.collections.get(pending.id)?.items;
      count += (stored?.size ?? 0) - pending.dels.length;
      for (const item of pending.sets) {
        set.push(`${pending.id}:${item.key}`, `${item.seq} ${item.text}`);
        if (stored?.has(item.key) !== true) count += 1;
      }
      if (!made.replace) for (const key of pending.dels) del.push(`${pending.id}:${key}`);
    }
    if (made.replace || count !== this.#committed?.count) set.push('count', String(count));
    this.#pending = { ...made, count };
    return { replace: made.replace, set, del };
  }

  /** The change from the last `build` landed in the store. */
  landed(): void {
    const pending = this.#pending;
    this.#pending = null;
    if (pending === null) return;
    if (pending.whole) {
      this.#committed = null;
      return;
    }
    const collections = pending.replace || this.#committed === null ? new Map<number, Committed>() : this.#committed.collections;
    for (const p of pending.collections.values()) {
      let c = collections.get(p.id);
      if (c === undefined) {
        c = { map: p.map, version: p.version, items: new Map(), maxSeq: 0 };
        collections.set(p.id, c);
      }
      for (const item of p.sets) c.items.set(item.key, { text: item.text, seq: item.seq });
      for (const key of p.dels) c.items.delete(key);
      c.map = p.map;
      c.version = p.version;
      c.maxSeq = p.maxSeq;
    }
    this.#committed = { shell: pending.shell, collections, count: pending.count };
  }

  /** Forgets what is stored: the next commit replaces the key (after something else wrote it). */
  reset(): void {
    this.#committed = null;
    this.#pending = null;
  }

  /**
   * Called by a collection while a snapshot is made: records its entries' change against
   * the last landed commit and returns its marker; null (the caller writes its text in
   * place) when an entry has no text that keeps its place (`textOf` gave null) or the
   * owner was met already in this snapshot. `version` is the map's change count (-1: none).
   */
  collection<V>(
    owner: object,
    kind: CollectionKind,
    map: ReadonlyMap<string, V>,
    version: number,
    textOf: (key: string, value: V) => string | null,
  ): string | null {
    const building = this.#building;
    if (building === null) return null;
    let id = this.#ids.get(owner);
    if (id === undefined) {
      id = (this.#nextId += 1);
      this.#ids.set(owner, id);
    }
    if (building.has(id)) return null;
    const committed = this.#full ? undefined : this.#committed?.collections.get(id);
    const pending: Pending = { id, kind, map, version, sets: [], dels: [], maxSeq: committed?.maxSeq ?? 0 };
    if (committed !== undefined && version >= 0 && committed.map === map && committed.version === version) {
      building.set(id, pending);
      return markerOf(kind, id);
    }
    // Seqs rise along the map's order: an entry keeps its seq while it stays after the
    // one before it; a key deleted and set again (now last) gets a new one.
    let last = 0;
    let kept = 0;
    for (const [key, value] of map) {
      const text = textOf(key, value);
      if (text === null) return null;
      const stored = committed?.items.get(key);
      if (stored !== undefined) {
        kept += 1;
        if (stored.seq > last) {
          if (stored.text !== text) pending.sets.push({ key, text, seq: stored.seq });
          last = stored.seq;
          continue;
        }
      }
      last = pending.maxSeq += 1;
      pending.sets.push({ key, text, seq: last });
    }
    if (committed !== undefined && kept < committed.items.size) {
      for (const key of committed.items.keys()) if (!map.has(key)) pending.dels.push(key);
    }
    building.set(id, pending);
    return markerOf(kind, id);
  }

  /** The shell with the collections met, or null when its markers are not exactly theirs (a state string equal to one). */
  #collect(json: () => string, full: boolean): { shell: string; collections: Map<number, Pending>; replace: boolean } | null {
    const previous = active;
    activate(this);
    this.#building = new Map();
    this.#full = full;
    let shell: string;
    const collections = this.#building;
    try {
      shell = json();
    } finally {
      activate(previous);
      this.#building = null;
      this.#full = false;
    }
    const seen = new Set<number>();
    for (const match of shell.matchAll(MARKER)) {
      const id = Number(match[2]);
      if (collections.get(id)?.kind !== match[1] || seen.has(id)) return null;
      seen.add(id);
    }
    if (seen.size !== collections.size) return null;
    return { shell, collections, replace: full };
  }

  /** The whole text in one field (replacing the key); the next commit replaces again. */
  #whole(json: () => string): PartsChange {
    this.#pending = { shell: '', collections: new Map(), replace: true, count: 0, whole: true };
    return { replace: true, set: ['whole', json()], del: [] };
  }
}

/**
 * The snapshot's JSON from a stored snapshot: a string as it is, a hash's parts put
 * together (exactly the text the service's `snapshotJson()` gave). Throws when the parts
 * do not fit together.
 */
export function assembleState(stored: StoredState): string {
  if ('value' in stored) return stored.value;
  const { fields } = stored;
  const whole = fields.get('whole');
  if (whole !== undefined) return whole;
  const shell = fields.get('shell');
  if (shell === undefined) throw new Error('the snapshot has no shell field');
  if (fields.get('count') !== String(fields.size - 1)) throw new Error(`the snapshot holds ${fields.size - 1} parts, its count says ${fields.get('count') ?? 'nothing'}`);
  const items = new Map<number, [number, string][]>();
  for (const [name, value] of fields) {
    if (name === 'shell' || name === 'count') continue;
    const colon = name.indexOf(':');
    const space = value.indexOf(' ');
    const id = Number(name.slice(0, colon));
    const seq = Number(value.slice(0, space));
    if (colon <= 0 || space <= 0 || !Number.isSafeInteger(id) || !Number.isSafeInteger(seq)) throw new Error(`the snapshot has a field it cannot place: ${name.slice(0, 60)}`);
    let list = items.get(id);
    if (list === undefined) items.set(id, (list = []));
    list.push([seq, value.slice(space + 1)]);
  }
  let placed = 0;
  const text = shell.replace(MARKER, (_match, kind: string, id: string) => {
    const list = items.get(Number(id)) ?? [];
    placed += list.length;
    const members = list
      .sort((a, b) => a[0] - b[0])
      .map((item) => item[1])
      .join(',');
    return kind === 'o' ? `{${members}}` : kind === 'a' ? `[${members}]` : members;
  });
  if (placed !== fields.size - 2) throw new Error('the snapshot has entries of a collection its shell does not name');
  return text;
}

/** Bytes a change writes (field names and values, UTF-8): for benches and tests. */
export function changeBytes(change: PartsChange): number {
  let bytes = 0;
  for (const part of change.set) bytes += Buffer.byteLength(part);
  for (const part of change.del) bytes += Buffer.byteLength(part);
  return bytes;
}
