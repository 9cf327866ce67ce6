/** One sparse §5.3 feature vector: (feature name, value) pairs; absent features are 0. */
export type Features = Iterable<readonly [string, number]>;

/**
 * Sparse vectors in compressed rows: every feature name interned once, each row a run of
 * (column, value) pairs in typed arrays. At 1 M people with ~10 non-zero tags each this is about
 * 100 MB, where a Map per person would be several times that.
 */
export type Dataset = {
  readonly size: number;
  /** Feature names by column. */
  readonly columns: readonly string[];
  /** How many rows have each column non-zero. */
  support(column: number): number;
  /** Calls `fn` with each non-zero (column, value) of `row`. */
  forEach(row: number, fn: (column: number, value: number) => void): void;
  /** The row's non-zero features by name. */
  features(row: number): [string, number][];
  /** Appends a row; returns its index. */
  add(features: Features): number;
};

function grow<T extends Float32Array | Int32Array | Uint32Array>(a: T, need: number, make: (n: number) => T): T {
  if (need <= a.length) return a;
  const b = make(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

export function createDataset(): Dataset {
  const index = new Map<string, number>();
  const columns: string[] = [];
  let support = new Uint32Array(1024);
  let cols = new Int32Array(1 << 16);
  let vals = new Float32Array(1 << 16);
  let starts = new Uint32Array(1024);
  let rows = 0;
  let nnz = 0;
  return {
    get size() {
      return rows;
    },
    columns,
    support: (c) => support[c]!,
    forEach(row, fn) {
      const end = starts[row + 1]!;
      for (let i = starts[row]!; i < end; i++) fn(cols[i]!, vals[i]!);
    },
    features(row) {
      const out: [string, number][] = [];
      const end = starts[row + 1]!;
      for (let i = starts[row]!; i < end; i++) out.push([columns[cols[i]!]!, vals[i]!]);
      return out;
    },
    add(features) {
      starts = grow(starts, rows + 2, (n) => new Uint32Array(n));
      for (const [name, value] of features) {
        if (value === 0 || !Number.isFinite(value)) continue;
        let c = index.get(name);
        if (c === undefined) {
          c = columns.length;
          index.set(name, c);
          columns.push(name);
          support = grow(support, c + 1, (n) => new Uint32Array(n));
        }
        cols = grow(cols, nnz + 1, (n) => new Int32Array(n));
        vals = grow(vals, nnz + 1, (n) => new Float32Array(n));
        cols[nnz] = c;
        vals[nnz] = value;
        support[c] = support[c]! + 1;
        nnz++;
      }
      rows++;
      starts[rows] = nnz;
      return rows - 1;
    },
  };
}

/**
 * FNV-1a, 32 bits, then MurmurHash3's finalizer: a stable hash of a profile key, the same in every
 * process and release. FNV alone leaves the high bits of keys that differ only at the end
 * (`user-17`, `user-18`) too alike for a split by range.
 */
function keyHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Whether a person is in the held-out part: by a hash of their profile key, so the same people are
 * held out on every retraining and the accuracy of two trainings compares like with like.
 */
export const inHoldout = (profileKey: string, fraction: number): boolean => keyHash(profileKey) / 2 ** 32 < fraction;
