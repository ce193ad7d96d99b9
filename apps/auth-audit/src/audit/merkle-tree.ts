import { createHash } from 'node:crypto';

// The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1, over the audit records: leaf i is
// record i+1, its input the 32 bytes of the record's hash. Hashes are raw 32-byte Buffers here, hex outside.

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** RFC 9162 MTH of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT = createHash('sha256').digest();

export function leafHash(recordHashHex: string): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(Buffer.from(recordHashHex, 'hex')).digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** The largest power of two smaller than n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[lo:hi]) over leaf hashes. */
export function subtreeRoot(leaves: readonly Buffer[], lo = 0, hi = leaves.length): Buffer {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[lo];
  const k = splitPoint(n);
  return nodeHash(subtreeRoot(leaves, lo, lo + k), subtreeRoot(leaves, lo + k, hi));
}

/** PATH(m, D[lo:hi]): the audit path of leaf m (0-based, relative to lo), RFC 9162 2.1.3.1. */
export function inclusionProof(leaves: readonly Buffer[], m: number, lo = 0, hi = leaves.length): Buffer[] {
  const n = hi - lo;
  if (m < 0 || m >= n) throw new RangeError(`leaf ${m} is outside a tree of ${n}`);
  if (n === 1) return [];
  const k = splitPoint(n);
  return m < k
    ? [...inclusionProof(leaves, m, lo, lo + k), subtreeRoot(leaves, lo + k, hi)]
    : [...inclusionProof(leaves, m - k, lo + k, hi), subtreeRoot(leaves, lo, lo + k)];
}

/** PROOF(m, D[0:n]): that the tree of size m is a prefix of the tree of size n, RFC 9162 2.1.4.1. */
export function consistencyProof(leaves: readonly Buffer[], m: number, n = leaves.length): Buffer[] {
  if (m < 1 || m > n) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  return subproof(leaves, m, 0, n, true);
}

function subproof(leaves: readonly Buffer[], m: number, lo: number, hi: number, complete: boolean): Buffer[] {
  const n = hi - lo;
  if (m === n) return complete ? [] : [subtreeRoot(leaves, lo, hi)];
  const k = splitPoint(n);
  return m <= k
    ? [...subproof(leaves, m, lo, lo + k, complete), subtreeRoot(leaves, lo + k, hi)]
    : [...subproof(leaves, m - k, lo + k, hi, false), subtreeRoot(leaves, lo, lo + k)];
}

/** RFC 9162 2.1.3.2: does `proof` show leaf `index` of a tree of `size` under `root`? */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Buffer,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  return inclusionRoot(index, size, leaf, proof)?.equals(root) ?? false;
}

/** The root RFC 9162 2.1.3.2 computes from a leaf and its audit path; undefined when the path cannot fit. */
export function inclusionRoot(
  index: number,
  size: number,
  leaf: Buffer,
  proof: readonly Buffer[],
): Buffer | undefined {
  if (index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (first, firstRoot) is a prefix of (second, secondRoot)? */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Buffer,
  secondRoot: Buffer,
  proof: readonly Buffer[],
): boolean {
  if (first < 1 || first > second) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  let path = [...proof];
  // A first tree that is a complete subtree is its own first node.
  if ((first & (first - 1)) === 0) path = [firstRoot, ...path];
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr.equals(firstRoot) && sr.equals(secondRoot) && sn === 0;
}

/**
 * The right edge of the tree: the roots of its perfect subtrees, largest first (one per set bit of the
 * size). Enough to append leaves and compute the root without the leaves themselves; stored with each
 * checkpoint so verification can resume at a retention cut.
 */
export class MerkleFrontier {
  private constructor(
    private size_: number,
    private readonly nodes: Buffer[],
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier(0, []);
  }

  /** From a stored frontier (hex); throws when the number of nodes does not fit the size. */
  static fromHex(size: number, hexNodes: readonly string[]): MerkleFrontier {
    const expected = size
      .toString(2)
      .split('')
      .filter((bit) => bit === '1').length;
    if (hexNodes.length !== expected) throw new Error(`a frontier of size ${size} has ${expected} nodes`);
    return new MerkleFrontier(
      size,
      hexNodes.map((hex) => Buffer.from(hex, 'hex')),
    );
  }

  get size(): number {
    return this.size_;
  }

  append(leaf: Buffer): void {
    let node = leaf;
    // Merge while the lowest subtree has the same height as the new one (trailing one bits of the size).
    for (let size = this.size_; size % 2 === 1; size = Math.floor(size / 2)) {
      node = nodeHash(this.nodes.pop()!, node);
    }
    this.nodes.push(node);
    this.size_ += 1;
  }

  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let root = this.nodes[this.nodes.length - 1];
    for (let index = this.nodes.length - 2; index >= 0; index -= 1) root = nodeHash(this.nodes[index], root);
    return root;
  }

  toHex(): string[] {
    return this.nodes.map((node) => node.toString('hex'));
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier(this.size_, [...this.nodes]);
  }
}

/**
 * A whole small tree kept level by level, for every leaf's audit path in O(n) hashes in all (inclusionProof
 * recomputes subtrees per leaf). Pairing left to right and lifting a level's unpaired last node unchanged
 * gives RFC 9162's tree: its left subtrees are the perfect ones of the largest power of two.
 */
export class MerkleLevels {
  private readonly levels: Buffer[][];

  constructor(leaves: readonly Buffer[]) {
    this.levels = [[...leaves]];
    for (let level = this.levels[0]; level.length > 1;) {
      const up: Buffer[] = [];
      for (let index = 0; index < level.length; index += 2)
        up.push(index + 1 < level.length ? nodeHash(level[index], level[index + 1]) : level[index]);
      this.levels.push(up);
      level = up;
    }
  }

  get size(): number {
    return this.levels[0].length;
  }

  root(): Buffer {
    return this.size === 0 ? EMPTY_ROOT : this.levels[this.levels.length - 1][0];
  }

  /** PATH(m) of RFC 9162 2.1.3.1: a lifted node has no sibling at its level and adds nothing. */
  path(m: number): Buffer[] {
    if (m < 0 || m >= this.size) throw new RangeError(`leaf ${m} is outside a tree of ${this.size}`);
    const path: Buffer[] = [];
    let index = m;
    for (const level of this.levels.slice(0, -1)) {
      const sibling = index ^ 1;
      if (sibling < level.length) path.push(level[sibling]);
      index = Math.floor(index / 2);
    }
    return path;
  }
}
