import { createHash, randomInt } from 'node:crypto';

const UINT32_RANGE = 2 ** 32;

/**
 * One sampling seed per choice. Without a client seed each comes from the CSPRNG, so concurrent requests
 * and the n choices of one request never share random numbers (node-llama-cpp would otherwise fall back
 * to the current second). With a client seed the first choice uses it as given and choice i a seed
 * derived from (seed, i): the same request gives the same answers, and its choices differ.
 */
export function choiceSeeds(clientSeed: number | undefined, count: number): number[] {
  if (clientSeed === undefined) {
    const seeds = new Set<number>();
    while (seeds.size < count) seeds.add(randomInt(UINT32_RANGE));
    return [...seeds];
  }
  const seeds = [clientSeed];
  for (let index = 1; seeds.length < count; index++) {
    const derived = createHash('sha256')
      .update(`airlock-seed:${clientSeed}:${index}`)
      .digest()
      .readUInt32BE(0);
    if (!seeds.includes(derived)) seeds.push(derived);
  }
  return seeds;
}
