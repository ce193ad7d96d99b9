// The auditor's offline verifier: an export (JSON Lines), a witness file and the public key(s), nothing else —
// no Airlock code, no database, no network. It follows docs/audit-log.md ("Verifying offline") step by step,
// and is written apart from the service so the two implementations check each other.
import { createHash, createPublicKey, verify } from 'node:crypto';

const FIELDS = (
  'sequence time kind request_id principal_id principal_kind tenant role action model worker client_address ' +
  'user_agent outcome status_code error_class prompt_tokens completion_tokens cached_tokens latency_us ttft_us ' +
  'content_capture request_digest response_digest content_key_id request_ciphertext response_ciphertext target ' +
  'details_json prev_hash'
).split(' ');
const GENESIS = '0'.repeat(64);

/**
 * docs/audit-log.md: v3 (v2's fields, then model_sha256 and model_signer) when either model field is non-empty;
 * else v2 (client_request_id and field_flags appended) when either of those is; else v1.
 */
function canonicalText(record) {
  const v1 = FIELDS.map((field) => record[field]);
  const v2 = [record.client_request_id ?? '', record.field_flags ?? ''];
  if (record.model_sha256 || record.model_signer)
    return JSON.stringify([
      'airlock.audit.v3',
      ...v1,
      ...v2,
      record.model_sha256 ?? '',
      record.model_signer ?? '',
    ]);
  if (!record.client_request_id && !record.field_flags) return JSON.stringify(['airlock.audit.v1', ...v1]);
  return JSON.stringify(['airlock.audit.v2', ...v1, ...v2]);
}
const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const leaf = (recordHashHex) => sha256(Buffer.from([0]), Buffer.from(recordHashHex, 'hex'));
const node = (left, right) => sha256(Buffer.from([1]), left, right);

/** RFC 9162 tree kept as its right edge: perfect subtree roots, largest first. */
class Frontier {
  constructor(size = 0, nodes = []) {
    this.size = size;
    this.nodes = nodes;
  }
  append(hash) {
    let carry = hash;
    for (let s = this.size; s % 2 === 1; s = Math.floor(s / 2)) carry = node(this.nodes.pop(), carry);
    this.nodes.push(carry);
    this.size += 1;
  }
  root() {
    if (this.nodes.length === 0) return sha256();
    let root = this.nodes.at(-1);
    for (let i = this.nodes.length - 2; i >= 0; i -= 1) root = node(this.nodes[i], root);
    return root;
  }
}

export const checkpointText = (c) =>
  ['airlock.audit.v2.checkpoint', c.tree_size, c.root_hash, c.record_hash, c.time, c.previous_digest].join(
    '\n',
  );

/** key id (first 16 hex digits of SHA-256 of the SPKI DER) → public key, for every PEM block given. */
export function publicKeys(pemText) {
  const keys = new Map();
  for (const block of pemText.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []) {
    const key = createPublicKey(block);
    const id = createHash('sha256')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 16);
    keys.set(id, key);
  }
  return keys;
}

const signatureOk = (keys, keyId, text, signature) => {
  const key = keys.get(keyId);
  try {
    return (
      key !== undefined && verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64'))
    );
  } catch {
    return false;
  }
};

/**
 * Returns { ok, failure, failedSequence, message, records, witnessed, lastWitnessedTreeSize }.
 * failure: record_altered | chain_broken | record_missing | witness_invalid | witness_mismatch | log_truncated.
 */
export function verifyOffline({ exportText, witnessText, publicKeyPem }) {
  const keys = publicKeys(publicKeyPem);
  const report = {
    ok: true,
    failure: '',
    failedSequence: 0,
    message: '',
    records: 0,
    witnessed: 0,
    lastWitnessedTreeSize: 0,
  };
  const fail = (failure, failedSequence, message) =>
    Object.assign(report, { ok: false, failure, failedSequence, message });

  // 1. The witness: every line signed by a given key, its frontier giving its root.
  const witness = witnessText
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
  let previousLine;
  for (const line of witness) {
    if (!signatureOk(keys, line.key_id, checkpointText(line), line.signature)) {
      return fail(
        'witness_invalid',
        line.tree_size,
        `witness checkpoint ${line.tree_size}: signature does not verify`,
      );
    }
    const frontier = new Frontier(
      line.tree_size,
      line.frontier.map((hex) => Buffer.from(hex, 'hex')),
    );
    if (frontier.root().toString('hex') !== line.root_hash) {
      return fail(
        'witness_invalid',
        line.tree_size,
        `witness checkpoint ${line.tree_size}: frontier does not give its root`,
      );
    }
    if (previousLine && line.tree_size < previousLine.tree_size) {
      return fail(
        'witness_invalid',
        line.tree_size,
        `witness checkpoint ${line.tree_size} is older than the one before it`,
      );
    }
    previousLine = line;
  }
  report.witnessed = witness.length;
  report.lastWitnessedTreeSize = witness.reduce((max, line) => Math.max(max, line.tree_size), 0);
  const bySize = new Map(witness.map((line) => [line.tree_size, line]));

  // 2. The export: each record hashes to its hash and links to the one before; the tree grows with it.
  const records = exportText
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
  let tree = new Frontier();
  let prevHash = GENESIS;
  let expected = 1;
  if (records.length > 0 && records[0].sequence > 1) {
    // A retention cut: resume from the witnessed checkpoint just before the first record.
    const anchor = bySize.get(records[0].sequence - 1);
    if (!anchor) {
      return fail(
        'record_missing',
        1,
        `records 1..${records[0].sequence - 1} are missing and no witnessed checkpoint anchors them`,
      );
    }
    tree = new Frontier(
      anchor.tree_size,
      anchor.frontier.map((hex) => Buffer.from(hex, 'hex')),
    );
    prevHash = anchor.record_hash;
    expected = records[0].sequence;
  }
  let lastCompared = tree.size;
  for (const record of records) {
    if (record.sequence !== expected)
      return fail('record_missing', expected, `record ${expected} is missing`);
    const hash = sha256(canonicalText(record)).toString('hex');
    if (hash !== record.hash)
      return fail(
        'record_altered',
        record.sequence,
        `record ${record.sequence}: content does not match its hash`,
      );
    if (record.prev_hash !== prevHash)
      return fail(
        'chain_broken',
        record.sequence - 1,
        `record ${record.sequence} does not link to record ${record.sequence - 1}`,
      );
    tree.append(leaf(record.hash));
    const line = bySize.get(record.sequence);
    if (line && (tree.root().toString('hex') !== line.root_hash || line.record_hash !== record.hash)) {
      return fail(
        'witness_mismatch',
        record.sequence,
        `records ${lastCompared + 1}..${record.sequence} differ from what the witness saw at tree size ${record.sequence}`,
      );
    }
    if (line) lastCompared = record.sequence;
    prevHash = record.hash;
    expected += 1;
    report.records += 1;
  }
  // 3. The end: the log must reach the last tree size the witness saw.
  if (report.lastWitnessedTreeSize > expected - 1) {
    return fail(
      'log_truncated',
      expected,
      `the export ends at ${expected - 1} but the witness saw ${report.lastWitnessedTreeSize} records`,
    );
  }
  report.message = `ok: ${report.records} records, ${report.witnessed} witnessed checkpoints, last ${expected - 1}`;
  return report;
}
