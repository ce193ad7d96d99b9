import { createHash } from 'node:crypto';
import {
  MerkleFrontier,
  MerkleLevels,
  consistencyProof,
  inclusionProof,
  leafHash,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle-tree.js';

// The roots here are computed independently, straight from RFC 9162 section 2.1.1's definition
// (MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 || d0), MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
// with k the largest power of two < n), over raw leaf data; the module under test never sees the data.
const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
function rfcMth(data: Buffer[]): Buffer {
  if (data.length === 0) return sha256();
  if (data.length === 1) return sha256(Buffer.from([0]), data[0]);
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return sha256(Buffer.from([1]), rfcMth(data.slice(0, k)), rfcMth(data.slice(k)));
}

const recordHashes = Array.from({ length: 20 }, (_, i) =>
  createHash('sha256')
    .update(`record ${i + 1}`)
    .digest('hex'),
);
const data = recordHashes.map((hex) => Buffer.from(hex, 'hex'));
const leaves = recordHashes.map(leafHash);

describe('RFC 9162 Merkle tree over audit records', () => {
  it('matches the Certificate Transparency reference vectors (8 leaves, every prefix)', () => {
    const inputs = [
      '',
      '00',
      '10',
      '2021',
      '3031',
      '40414243',
      '5051525354555657',
      '606162636465666768696a6b6c6d6e6f',
    ];
    const expected = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ];
    const raw = inputs.map((hex) => Buffer.from(hex, 'hex'));
    const rawLeaves = raw.map((d) => sha256(Buffer.from([0]), d));
    for (let n = 1; n <= 8; n += 1) {
      expect(rfcMth(raw.slice(0, n)).toString('hex')).toBe(expected[n - 1]);
      expect(subtreeRoot(rawLeaves.slice(0, n)).toString('hex')).toBe(expected[n - 1]);
    }
  });

  it('computes the same root as the definition for sizes 1..20, from leaves and from the frontier', () => {
    const frontier = MerkleFrontier.empty();
    for (let n = 1; n <= 20; n += 1) {
      frontier.append(leaves[n - 1]);
      const independent = rfcMth(data.slice(0, n));
      expect(subtreeRoot(leaves.slice(0, n))).toEqual(independent);
      expect(frontier.root()).toEqual(independent);
      // A stored frontier resumes where it left off.
      expect(MerkleFrontier.fromHex(n, frontier.toHex()).root()).toEqual(independent);
    }
  });

  it('proves every leaf of every tree up to 20 against the independent root, and rejects wrong proofs', () => {
    let checked = 0;
    for (let n = 1; n <= 20; n += 1) {
      const root = rfcMth(data.slice(0, n));
      for (let m = 0; m < n; m += 1) {
        const proof = inclusionProof(leaves.slice(0, n), m);
        expect(verifyInclusion(m, n, leaves[m], proof, root)).toBe(true);
        // Another leaf, another index, a flipped node or a shorter path does not verify.
        expect(verifyInclusion(m, n, leaves[(m + 1) % 20], proof, root)).toBe(false);
        if (n > 1) expect(verifyInclusion((m + 1) % n, n, leaves[m], proof, root)).toBe(false);
        if (proof.length > 0) {
          const flipped = proof.map((node, i) => (i === 0 ? Buffer.from(node.map((b) => b ^ 1)) : node));
          expect(verifyInclusion(m, n, leaves[m], flipped, root)).toBe(false);
          expect(verifyInclusion(m, n, leaves[m], proof.slice(1), root)).toBe(false);
        }
        checked += 1;
      }
    }
    expect(checked).toBe(210);
  });

  it('proves every size m ≤ n ≤ 20 consistent, and rejects a rewritten earlier tree', () => {
    let checked = 0;
    for (let n = 1; n <= 20; n += 1) {
      const second = rfcMth(data.slice(0, n));
      for (let m = 1; m <= n; m += 1) {
        const first = rfcMth(data.slice(0, m));
        const proof = consistencyProof(leaves.slice(0, n), m);
        expect(verifyConsistency(m, n, first, second, proof)).toBe(true);
        if (m < n) {
          // A different first tree (one record changed) is not a prefix of the second.
          const forged = [...data.slice(0, m)];
          forged[m - 1] = sha256(Buffer.from('forged'));
          expect(verifyConsistency(m, n, rfcMth(forged), second, proof)).toBe(false);
          expect(verifyConsistency(m, n, first, rfcMth(forged), proof)).toBe(false);
        }
        checked += 1;
      }
    }
    expect(checked).toBe(210);
  });

  it('builds every tree up to 40 level by level with the independent root and the same audit paths', () => {
    const more = Array.from({ length: 40 }, (_, i) => sha256(Buffer.from(`leaf ${i}`)));
    const moreLeaves = more.map((d) => sha256(Buffer.from([0]), d));
    let paths = 0;
    for (let n = 1; n <= 40; n += 1) {
      const tree = new MerkleLevels(moreLeaves.slice(0, n));
      const root = rfcMth(more.slice(0, n));
      expect(tree.root()).toEqual(root);
      for (let m = 0; m < n; m += 1) {
        expect(tree.path(m)).toEqual(inclusionProof(moreLeaves.slice(0, n), m));
        expect(verifyInclusion(m, n, moreLeaves[m], tree.path(m), root)).toBe(true);
        paths += 1;
      }
    }
    expect(paths).toBe(820);
    expect(new MerkleLevels([]).root()).toEqual(sha256());
  });
});
