import type { Dataset } from './dataset';

/**
 * A multinomial logistic (softmax) regression over sparse §5.3 vectors. Written here rather than
 * taken from npm: the maintained JavaScript one (ml-logistic-regression) trains one-vs-rest on a
 * dense ml-matrix with full-batch gradient steps — 1 M people × thousands of tags dense does not
 * fit in memory, and it gives no class probabilities to serve as a confidence.
 */
export type SoftmaxModel = {
  classes: string[];
  /** The features the model weighs (the others count 0). */
  features: string[];
  /** features.length × classes.length, row-major: weights[f * classes.length + c]. */
  weights: number[];
  bias: number[];
};

export type TrainOptions = {
  /** Passes over the training rows (at least; see minSteps). */
  epochs: number;
  /** At least this many row updates in all: a few hundred people get as many passes as they need. */
  minSteps: number;
  /** The step size at the start; it decays as 1 / (1 + t / rows). */
  learningRate: number;
  /** L2 penalty per step on the weights a row touches. */
  l2: number;
  /** A feature is weighed only when at least this many training rows have it (others: noise, and memory). */
  minSupport: number;
  /** At most this many features, the most supported. */
  maxFeatures: number;
  /** Seed of the row order. */
  seed: number;
};

export const DEFAULT_TRAIN: TrainOptions = {
  epochs: 8,
  minSteps: 200_000,
  learningRate: 0.1,
  l2: 1e-4,
  minSupport: 5,
  maxFeatures: 50_000,
  seed: 1,
};

/**
 * Each vector is divided by its length (all its components, weighed or not) before the dot
 * product: §5.3 compares people by the cosine, i.e. by the direction of their vector, and a
 * heavy user's and a light user's leaning weigh alike.
 */
function norm(values: Iterable<number>): number {
  let sum = 0;
  for (const v of values) sum += v * v;
  return sum === 0 ? 1 : Math.sqrt(sum);
}
/** Rows between two calls of `pause` (training 1 M rows must not hold a service's event loop for seconds). */
const PAUSE_EVERY = 20_000;

/**
 * A seeded uniform [0, 1) generator (mulberry32): the row order here, and reproducible streams in tests and benches.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** In place: p ← softmax(p). */
function softmaxInPlace(p: Float64Array): void {
  let max = -Infinity;
  for (const x of p) if (x > max) max = x;
  let sum = 0;
  for (let c = 0; c < p.length; c++) {
    p[c] = Math.exp(p[c]! - max);
    sum += p[c]!;
  }
  for (let c = 0; c < p.length; c++) p[c] = p[c]! / sum;
}

/**
 * Trains on `rows` of `data` (labels index `classes`) by stochastic gradient descent on the
 * cross-entropy, in a seeded shuffled order. `pause` is awaited every few thousand rows so a
 * caller can give its event loop a turn.
 */
export async function trainSoftmax(
  data: Dataset,
  rows: Uint32Array,
  labels: Int32Array,
  classes: readonly string[],
  options: Partial<TrainOptions> = {},
  pause: () => Promise<void> = async () => undefined,
): Promise<SoftmaxModel> {
  const o = { ...DEFAULT_TRAIN, ...options };
  const k = classes.length;
  // columns kept: supported enough, the most supported first
  const kept = data.columns
    .map((_, c) => c)
    .filter((c) => data.support(c) >= o.minSupport)
    .sort((a, b) => data.support(b) - data.support(a) || a - b)
    .slice(0, o.maxFeatures);
  const slot = new Int32Array(data.columns.length).fill(-1);
  kept.forEach((c, i) => (slot[c] = i));
  const w = new Float64Array(kept.length * k);
  const bias = new Float64Array(k);
  // start the bias at the log class priors: a row without any kept feature gets the base rates
  const counts = new Float64Array(k);
  for (const r of rows) counts[labels[r]!] = counts[labels[r]!]! + 1;
  for (let c = 0; c < k; c++) bias[c] = Math.log((counts[c]! + 1) / (rows.length + k));

  const random = seededRandom(o.seed);
  const order = Uint32Array.from(rows);
  const p = new Float64Array(k);
  const xs: number[] = [];
  const vs: number[] = [];
  let t = 0;
  const epochs = Math.max(o.epochs, Math.ceil(o.minSteps / Math.max(1, order.length)));
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let n = 0; n < order.length; n++) {
      const r = order[n]!;
      xs.length = 0;
      vs.length = 0;
      let sq = 0;
      data.forEach(r, (col, value) => {
        sq += value * value;
        const s = slot[col]!;
        if (s >= 0) {
          xs.push(s);
          vs.push(value);
        }
      });
      const length = sq === 0 ? 1 : Math.sqrt(sq);
      for (let f = 0; f < vs.length; f++) vs[f] = vs[f]! / length;
      p.set(bias);
      for (let f = 0; f < xs.length; f++) {
        const base = xs[f]! * k;
        for (let c = 0; c < k; c++) p[c] = p[c]! + w[base + c]! * vs[f]!;
      }
      softmaxInPlace(p);
      const y = labels[r]!;
      const rate = o.learningRate / (1 + t / order.length);
      for (let c = 0; c < k; c++) {
        const g = p[c]! - (c === y ? 1 : 0);
        bias[c] = bias[c]! - rate * g;
        for (let f = 0; f < xs.length; f++) {
          const at = xs[f]! * k + c;
          w[at] = w[at]! - rate * (g * vs[f]! + o.l2 * w[at]!);
        }
      }
      t++;
      if (t % PAUSE_EVERY === 0) await pause();
    }
  }
  return {
    classes: [...classes],
    features: kept.map((c) => data.columns[c]!),
    weights: Array.from(w),
    bias: Array.from(bias),
  };
}

export type Prediction = { value: string; confidence: number };

/** A model ready to predict: one Map lookup per non-zero feature, a dot product per class, a softmax. */
export function compile(model: SoftmaxModel) {
  const k = model.classes.length;
  const rowOf = new Map(model.features.map((f, i) => [f, i * k]));
  const p = new Float64Array(k);
  return {
    classes: model.classes,
    /** The class index with the highest probability, and that probability (its confidence). */
    best(features: Iterable<readonly [string, number]>): { index: number; confidence: number } {
      const pairs = [...features];
      const length = norm(pairs.map(([, v]) => v));
      p.set(model.bias);
      for (const [name, value] of pairs) {
        const base = rowOf.get(name);
        if (base === undefined) continue;
        for (let c = 0; c < k; c++) p[c] = p[c]! + (model.weights[base + c]! * value) / length;
      }
      softmaxInPlace(p);
      let index = 0;
      for (let c = 1; c < k; c++) if (p[c]! > p[index]!) index = c;
      return { index, confidence: p[index]! };
    },
    predict(features: Iterable<readonly [string, number]>): Prediction {
      const b = this.best(features);
      return { value: model.classes[b.index]!, confidence: b.confidence };
    },
  };
}

export type Holdout = { size: number; accuracy: number; baseline: number };

/**
 * Accuracy of `model` on the held-out `rows`, and the baseline: the accuracy of always answering
 * the most common class of the TRAINING rows (what a model that learned nothing would score).
 */
export function evaluate(
  model: SoftmaxModel,
  data: Dataset,
  labels: Int32Array,
  rows: Uint32Array,
  trainingRows: Uint32Array,
): Holdout {
  const predictor = compile(model);
  const counts = new Array<number>(model.classes.length).fill(0);
  for (const r of trainingRows) counts[labels[r]!] = counts[labels[r]!]! + 1;
  const majority = counts.indexOf(Math.max(...counts));
  let right = 0;
  let base = 0;
  for (const r of rows) {
    if (predictor.best(data.features(r)).index === labels[r]) right++;
    if (labels[r] === majority) base++;
  }
  const n = rows.length;
  return { size: n, accuracy: n === 0 ? 0 : right / n, baseline: n === 0 ? 0 : base / n };
}
