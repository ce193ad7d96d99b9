/**
 * Deterministic pseudo-random weights. Only 32-bit integer arithmetic and one multiply per value, so the
 * same seed gives the same bits on every platform and Node version (no Math.log/Math.cos in the path).
 */

/** FNV-1a over a string: mixes a tensor's name into the seed so each tensor has its own stream. */
export function hashString(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** mulberry32: small, fast and good enough to fill weight matrices; returns uint32 values. */
export function createUint32Generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Uniform values in [-a, a) with a = std·√3, i.e. the given standard deviation: small weights keep the
 * activations of an untrained stack of layers in a sane range.
 */
export function createWeightGenerator(seed: number, std: number): () => number {
  const next = createUint32Generator(seed);
  const scale = (2 * std * Math.sqrt(3)) / 4294967296;
  const offset = std * Math.sqrt(3);
  return () => next() * scale - offset;
}

const f32Scratch = new Float32Array(1);
const f32Bits = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary32 → binary16 bits, round to nearest even (subnormals kept; no NaN/Inf input expected). */
export function toFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = f32Bits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent >= 31) return sign | 0x7c00;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - exponent;
    let half = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (exponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent.
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}
