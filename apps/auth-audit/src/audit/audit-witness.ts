import { open, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  treeCheckpointDigest,
  treeCheckpointText,
  verifyTextSignature,
  type TreeCheckpointFields,
} from './checkpoint-signer.js';
import { MerkleFrontier } from './merkle-tree.js';

/**
 * One signed checkpoint as a witness keeps it: one JSON line, field names as in docs/audit-log.md. The
 * frontier lets anyone resume the tree from this line (its root must equal root_hash).
 */
export interface WitnessLine {
  tree_size: number;
  root_hash: string;
  record_hash: string;
  time: string;
  previous_digest: string;
  key_id: string;
  signature: string;
  frontier: string[];
}

export function witnessFields(line: WitnessLine): TreeCheckpointFields {
  return {
    treeSize: line.tree_size,
    rootHash: line.root_hash,
    recordHash: line.record_hash,
    time: new Date(line.time),
    previousDigest: line.previous_digest,
  };
}

export const witnessDigest = (line: WitnessLine): string => treeCheckpointDigest(witnessFields(line));

/** Whether a line is a checkpoint signed by a trusted key whose frontier really has its root. */
export function witnessLineValid(line: WitnessLine, trustedKeys: Map<string, string>): boolean {
  const pem = trustedKeys.get(line.key_id);
  if (!pem || !verifyTextSignature(treeCheckpointText(witnessFields(line)), line.signature, pem))
    return false;
  try {
    return MerkleFrontier.fromHex(line.tree_size, line.frontier).root().toString('hex') === line.root_hash;
  } catch {
    return false;
  }
}

/** Where checkpoints go after they are committed. A sink never blocks an append; a failing one is logged. */
export interface WitnessSink {
  readonly name: string;
  publish(line: WitnessLine): Promise<void>;
  close(): Promise<void>;
}

export const WITNESS_FILE_NAME = 'audit-checkpoints.jsonl';

/**
 * The witness file: every checkpoint appended (and fsynced) to AIRLOCK_AUDIT_WITNESS_DIR — a volume the
 * database's administrators do not control. Verify and the signer read it back.
 */
export class FileWitness implements WitnessSink {
  readonly name = 'file';
  readonly path: string;

  constructor(directory: string) {
    this.path = join(directory, WITNESS_FILE_NAME);
  }

  async publish(line: WitnessLine): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
    const file = await open(this.path, 'a', 0o600);
    try {
      await file.write(`${JSON.stringify(line)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
  }

  /** Every line, oldest first; a line that is not JSON is reported as null (the verifier names it). */
  async readAll(): Promise<(WitnessLine | null)[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return text
      .split('\n')
      .filter((row) => row.trim() !== '')
      .map((row) => {
        try {
          return JSON.parse(row) as WitnessLine;
        } catch {
          return null;
        }
      });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
