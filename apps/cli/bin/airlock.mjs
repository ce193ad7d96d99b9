#!/usr/bin/env node
// airlock: the admin and quick-test CLI over the gateway's HTTP API (keys, audit, models, chat).
// Settings: --url / AIRLOCK_URL (default http://127.0.0.1:8080) and --key / AIRLOCK_API_KEY.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { verifyOffline, publicKeys } from './offline-verify.mjs';
import { verifyInclusionProof, verifyReceiptSignature } from './proofs.mjs';

class CliError extends Error {}

function settings(command) {
  const options = command.optsWithGlobals();
  const key = options.key ?? process.env.AIRLOCK_API_KEY;
  if (!key) throw new CliError('no API key: pass --key or set AIRLOCK_API_KEY');
  return {
    url: (options.url ?? process.env.AIRLOCK_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, ''),
    key,
    json: options.json === true,
  };
}

async function call(command, method, path, body) {
  const { url, key } = settings(command);
  let response;
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the gateway at ${url}: ${error.cause?.code ?? error.cause?.message ?? error.message}`,
    );
  }
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try {
      message = JSON.parse(text).error?.message ?? text;
    } catch {
      // not JSON
    }
    throw new CliError(`${method} ${path} failed (${response.status}): ${message}`);
  }
  return response;
}

const json = async (command, method, path, body) => (await call(command, method, path, body)).json();

function print(command, value, columns) {
  if (settings(command).json || !columns) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const rows = (Array.isArray(value) ? value : [value]).map((row) =>
    columns.map((c) => {
      const v = row[c];
      return v === undefined || v === null || v === ''
        ? '-'
        : Array.isArray(v)
          ? v.join(',') || '*'
          : String(v);
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(columns.map((c) => c.toUpperCase())), ...rows.map(line)].join('\n')}\n`);
}

function filterQuery(options) {
  const query = new URLSearchParams();
  for (const [flag, name] of [
    ['since', 'start_time'],
    ['until', 'end_time'],
    ['tenant', 'tenant'],
    ['principal', 'principal_id'],
    ['model', 'model'],
    ['outcome', 'outcome'],
    ['requestId', 'request_id'],
  ]) {
    if (options[flag]) query.set(name, options[flag]);
  }
  return query;
}

const program = new Command('airlock')
  .description('Airlock admin CLI')
  .option('--url <url>', 'gateway URL (AIRLOCK_URL)')
  .option('--key <key>', 'API key (AIRLOCK_API_KEY)')
  .option('--json', 'print JSON for scripts');

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .requiredOption('--name <name>', 'key name')
  .option('--tenant <tenant>', 'tenant', 'default')
  .option('--role <role>', 'admin | auditor | user | tenant_admin', 'user')
  .option('--models <ids>', 'comma-separated allowed models (default: all)')
  .option('--rpm <n>', 'requests per minute (0 = unlimited)', '0')
  .option('--tpm <n>', 'tokens per minute (0 = unlimited)', '0')
  .option('--expires <time>', 'RFC 3339 expiry')
  .action(async (options, command) => {
    const created = await json(command, 'POST', '/admin/v1/keys', {
      name: options.name,
      tenant: options.tenant,
      role: options.role,
      allowed_models: options.models ? options.models.split(',') : [],
      requests_per_minute: Number(options.rpm),
      tokens_per_minute: Number(options.tpm),
      ...(options.expires ? { expires_at: options.expires } : {}),
    });
    if (settings(command).json) return print(command, created);
    print(command, created.key, ['id', 'tenant', 'name', 'role', 'allowed_models']);
    process.stdout.write(`\nsecret (shown once): ${created.secret}\n`);
  });
keys
  .command('list')
  .option('--tenant <tenant>', 'only this tenant')
  .option('--all', 'include revoked keys')
  .action(async (options, command) => {
    const query = new URLSearchParams({
      ...(options.tenant ? { tenant: options.tenant } : {}),
      include_revoked: String(!!options.all),
    });
    const list = await json(command, 'GET', `/admin/v1/keys?${query}`);
    print(command, list.data, ['id', 'tenant', 'name', 'role', 'allowed_models', 'created_at', 'revoked_at']);
  });
keys.command('revoke <id>').action(async (id, _options, command) => {
  print(command, await json(command, 'DELETE', `/admin/v1/keys/${encodeURIComponent(id)}`), [
    'id',
    'name',
    'revoked_at',
  ]);
});

const audit = program.command('audit').description('the audit log');
const withFilters = (cmd) =>
  cmd
    .option('--since <time>', 'RFC 3339 start')
    .option('--until <time>', 'RFC 3339 end')
    .option('--tenant <tenant>')
    .option('--principal <id>')
    .option('--model <id>')
    .option('--outcome <outcome>', 'allowed | denied | succeeded | failed | cancelled')
    .option('--request-id <id>');
withFilters(audit.command('query'))
  .option('--limit <n>', 'page size', '50')
  .action(async (options, command) => {
    const query = filterQuery(options);
    query.set('page_size', options.limit);
    const page = await json(command, 'GET', `/admin/v1/audit/records?${query}`);
    print(command, page.data, [
      'sequence',
      'time',
      'kind',
      'action',
      'principal_id',
      'model',
      'outcome',
      'status_code',
      'prompt_tokens',
      'completion_tokens',
      // The weights that answered (completions): compare with sha256sum and the signer's key fingerprint.
      'model_sha256',
      'model_signer',
    ]);
  });
withFilters(audit.command('export'))
  .option('--format <format>', 'jsonl | csv', 'jsonl')
  .action(async (options, command) => {
    const query = filterQuery(options);
    query.set('format', options.format);
    const response = await call(command, 'GET', `/admin/v1/audit/export?${query}`);
    let bytes = 0;
    const started = Date.now();
    for await (const chunk of response.body) {
      bytes += chunk.length;
      if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
      process.stderr.write(`\rexported ${(bytes / 1024).toFixed(0)} KiB`);
    }
    process.stderr.write(
      `\rexported ${(bytes / 1024).toFixed(0)} KiB in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });
audit
  .command('verify')
  .description('walk the chain and compare it with the witness (online), or check files offline (--export)')
  .option('--from-last-checkpoint', 'start at the latest signed checkpoint')
  .option('--export <file>', 'offline: a JSON Lines export (airlock audit export)')
  .option('--witness <file>', 'offline: the witness file (audit-checkpoints.jsonl)')
  .option('--public-key <file>', 'offline: the signing public key(s), PEM')
  .action(async (options, command) => {
    if (options.export || options.witness || options.publicKey) {
      if (!options.export || !options.witness || !options.publicKey) {
        throw new CliError('offline verify needs --export, --witness and --public-key');
      }
      const result = verifyOffline({
        exportText: readFileSync(options.export, 'utf8'),
        witnessText: readFileSync(options.witness, 'utf8'),
        publicKeyPem: readFileSync(options.publicKey, 'utf8'),
      });
      const json = command.optsWithGlobals().json === true;
      process.stdout.write(
        json
          ? `${JSON.stringify(result, null, 2)}\n`
          : `${result.ok ? result.message : `FAILED at ${result.failedSequence} (${result.failure}): ${result.message}`}\n`,
      );
      if (!result.ok) process.exitCode = 3;
      return;
    }
    const result = await json(command, 'POST', '/admin/v1/audit/verify', {
      from_last_checkpoint: !!options.fromLastCheckpoint,
    });
    print(command, result, [
      'ok',
      'records_checked',
      'first_sequence',
      'last_sequence',
      'witnessed_checkpoints',
      'failed_sequence',
      'failure',
      'message',
    ]);
    if (!result.ok) process.exitCode = 3;
  });
audit
  .command('prove <receipt>')
  .description('inclusion proof of a receipt (x-airlock-audit-receipt) against the latest signed checkpoint')
  .option('--tree-size <n>', 'prove against the checkpoint of this tree size instead')
  .option('--public-key <file>', "check the receipt's and the checkpoint's signatures with this key (PEM)")
  .action(async (receipt, options, command) => {
    const query = new URLSearchParams({
      receipt,
      ...(options.treeSize ? { tree_size: options.treeSize } : {}),
    });
    const proof = await json(command, 'GET', `/admin/v1/audit/proofs/inclusion?${query}`);
    const checks = { inclusion: verifyInclusionProof(proof) };
    if (options.publicKey) {
      const keys = publicKeys(readFileSync(options.publicKey, 'utf8'));
      Object.assign(checks, verifyReceiptSignature(receipt, proof, keys));
    }
    print(command, { ...proof, checks });
    if (!Object.values(checks).every(Boolean)) process.exitCode = 3;
  });
audit
  .command('consistency <first> [second]')
  .description('consistency proof between the trees of two signed checkpoints (second: latest)')
  .action(async (first, second, _options, command) => {
    const query = new URLSearchParams({ first, ...(second ? { second } : {}) });
    print(command, await json(command, 'GET', `/admin/v1/audit/proofs/consistency?${query}`));
  });
audit
  .command('content <sequence>')
  .description(
    "a full-capture record's request and response bodies, decrypted (admin, auditor; the read is audited)",
  )
  .action(async (sequence, _options, command) => {
    const content = await json(
      command,
      'GET',
      `/admin/v1/audit/records/${encodeURIComponent(sequence)}/content`,
    );
    if (settings(command).json) return print(command, content);
    const part = (name, at, body) => `${name} (record ${at ?? '-'}):\n${body ?? '(not captured)'}\n`;
    process.stdout.write(
      `${part('request', content.request_sequence, content.request_body)}\n` +
        `${part('response', content.response_sequence, content.response_body)}` +
        `(this read: audit record ${content.read_sequence})\n`,
    );
  });

const models = program.command('models').description('models and workers');
models.command('list').action(async (_options, command) => {
  print(command, (await json(command, 'GET', '/v1/models')).data, ['id', 'owned_by']);
});
models.command('status').action(async (_options, command) => {
  const status = await json(command, 'GET', '/admin/v1/models');
  if (settings(command).json) return print(command, status);
  const rows = status.workers.flatMap((w) =>
    w.models.map((m) => ({
      worker: w.address,
      alive: w.alive,
      model: m.id,
      state: m.state,
      slots: `${m.slots_busy}/${m.slots_total}`,
      queue: m.queue_length,
      kv: `${Math.round(m.kv_cache_utilization * 100)}%`,
      'tokens/s': m.tokens_per_second,
      // Who signed the weights it serves ('unsigned' when verified by digest only; '-' until verified).
      signer: m.provenance ? m.provenance.signer || 'unsigned' : '',
    })),
  );
  print(command, rows, ['worker', 'alive', 'model', 'state', 'slots', 'queue', 'kv', 'tokens/s', 'signer']);
});
models
  .command('scale <model> <replicas>')
  .description("set the replicas of a model's worker Deployment (Kubernetes discovery only)")
  .action(async (model, replicas, _options, command) => {
    if (!/^\d+$/.test(replicas)) throw new Error(`replicas must be a whole number, got "${replicas}"`);
    const body = { replicas: Number(replicas) };
    const scaled = await json(command, 'PUT', `/admin/v1/models/${encodeURIComponent(model)}/replicas`, body);
    print(command, scaled, ['model', 'deployment', 'previous', 'desired', 'ready']);
  });

program
  .command('chat <prompt>')
  .description('one-shot prompt, streamed')
  .requiredOption('--model <id>')
  .option('--max-tokens <n>', 'limit', '256')
  .action(async (prompt, options, command) => {
    const response = await call(command, 'POST', '/v1/chat/completions', {
      model: options.model,
      messages: [{ role: 'user', content: prompt }],
      max_tokens: Number(options.maxTokens),
      stream: true,
    });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end).replace(/^data: /, '');
        buffer = buffer.slice(end + 2);
        if (event === '[DONE]') continue;
        const data = JSON.parse(event);
        if (data.error) throw new CliError(`generation failed: ${data.error.message}`);
        process.stdout.write(data.choices?.[0]?.delta?.content ?? '');
      }
    }
    process.stdout.write('\n');
  });

// Model signing (OpenSSF model-signing format, key-based, offline). Local files only; no gateway is called.
async function modelSigning() {
  try {
    return await import('@airlock/contracts');
  } catch (error) {
    throw new CliError(`model signing needs the built libraries (npm run build): ${error.message}`);
  }
}

async function sha256File(path) {
  const { createHash } = await import('node:crypto');
  const { createReadStream } = await import('node:fs');
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

const model = program.command('model').description('sign and verify model files (OpenSSF model-signing)');
model
  .command('keygen <prefix>')
  .description('write an ECDSA P-256 key pair: <prefix>.key (private, 0600) and <prefix>.pub (to trust)')
  .action(async (prefix) => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { writeFileSync } = await import('node:fs');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(`${prefix}.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
      flag: 'wx',
    });
    writeFileSync(`${prefix}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { flag: 'wx' });
    const { keyFingerprint } = await modelSigning();
    process.stdout.write(`${prefix}.key ${prefix}.pub ${keyFingerprint(publicKey)}\n`);
  });
model
  .command('sign <file>')
  .description(
    "sign a GGUF file: writes a sigstore bundle (default <file>.sig) for the catalog's signature.bundle",
  )
  .requiredOption('--signing-key <pem>', 'ECDSA P-256 private key (PEM)')
  .option('--out <path>', 'where to write the bundle')
  .action(async (file, options) => {
    const { basename } = await import('node:path');
    const { readFileSync, writeFileSync } = await import('node:fs');
    const { signModel } = await modelSigning();
    const name = basename(file);
    const bundle = signModel(
      name.replace(/\.gguf$/i, ''),
      [{ name, sha256: await sha256File(file) }],
      readFileSync(options.signingKey, 'utf8'),
    );
    const out = options.out ?? `${file}.sig`;
    writeFileSync(out, `${JSON.stringify(bundle, null, 2)}\n`);
    process.stdout.write(`${out}\n`);
  });
model
  .command('verify <file>')
  .description('verify a GGUF file against its bundle and a trusted public key, as the worker does')
  .requiredOption('--public-key <pem>', 'the trusted public key (PEM)')
  .option('--signature <path>', 'the bundle (default <file>.sig)')
  .action(async (file, options, command) => {
    const { basename } = await import('node:path');
    const { readFileSync } = await import('node:fs');
    const { verifyModelSignature, ModelSignatureError } = await modelSigning();
    try {
      const sha256 = await sha256File(file);
      const verified = verifyModelSignature(
        readFileSync(options.signature ?? `${file}.sig`, 'utf8'),
        readFileSync(options.publicKey, 'utf8'),
        [{ name: basename(file), sha256 }],
      );
      const json = command.optsWithGlobals().json === true;
      // The file's sha256 and the signer are what audit records name (model_sha256, model_signer).
      process.stdout.write(
        json
          ? `${JSON.stringify(verified)}\n`
          : `OK ${basename(file)} sha256 ${sha256} signed by ${verified.signer}\n`,
      );
    } catch (error) {
      if (error instanceof ModelSignatureError) throw new CliError(`signature refused: ${error.message}`);
      throw error;
    }
  });

program.parseAsync().catch((error) => {
  process.stderr.write(`airlock: ${error instanceof CliError ? error.message : error.message}\n`);
  process.exit(1);
});
