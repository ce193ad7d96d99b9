#!/usr/bin/env node
// The end-to-end smoke, run inside the test's network namespace (the gateway listens on the namespace's
// own 127.0.0.1, which the host cannot reach): admin key from where the start script puts it, a user key
// made with the `airlock` CLI, then models, chat, streamed chat and embeddings through the official
// `openai` client, and `airlock audit verify`. Prints one JSON summary for the test to assert on.
// Settings: AIRLOCK_URL (gateway) and AIRLOCK_DATA_DIR (the start script's data directory).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import OpenAI from 'openai';

const CLI = resolve(import.meta.dirname, '../../apps/cli/bin/airlock.mjs');
const url = process.env.AIRLOCK_URL ?? 'http://127.0.0.1:8080';
const adminKey = (await readFile(join(process.env.AIRLOCK_DATA_DIR, 'admin-key'), 'utf8')).trim();

/** The CLI as a process, `--json`, parsed. */
async function airlock(key, ...args) {
  const { stdout } = await promisify(execFile)(process.execPath, [
    CLI,
    '--url',
    url,
    '--key',
    key,
    '--json',
    ...args,
  ]);
  return JSON.parse(stdout);
}

const created = await airlock(adminKey, 'keys', 'create', '--name', 'netns-smoke');
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: created.secret, maxRetries: 0 });

const models = (await client.models.list()).data.map((m) => m.id);
const model = models[0];
const messages = [{ role: 'user', content: 'Once upon a time' }];

const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });

const stream = await client.chat.completions.create({
  model,
  messages,
  max_tokens: 16,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let streamChunks = 0;
let streamText = '';
for await (const chunk of stream) {
  const delta = chunk.choices[0]?.delta?.content;
  if (delta) {
    streamChunks += 1;
    streamText += delta;
  }
}

const embeddings = await client.embeddings.create({ model, input: 'Once upon a time' });
const calls = 4; // models, chat, stream, embeddings

// Each call leaves a request record and, shortly after, its completion record: wait for all of them
// (bounded) so that verify checks a chain that includes every call made here.
let records = [];
for (let tries = 0; tries < 50; tries += 1) {
  records = await airlock(
    adminKey,
    'audit',
    'query',
    '--principal',
    `key:${created.key.id}`,
    '--limit',
    '100',
  );
  if (records.length >= 2 * calls) break;
  await sleep(200);
}
const verify = await airlock(adminKey, 'audit', 'verify');

process.stdout.write(
  `${JSON.stringify({
    models,
    chatText: chat.choices[0]?.message?.content ?? '',
    chatFinishReason: chat.choices[0]?.finish_reason ?? null,
    chatUsage: chat.usage ?? null,
    streamChunks,
    streamText,
    embeddingLength: embeddings.data[0]?.embedding.length ?? 0,
    calls,
    userRecords: records.map((r) => ({
      kind: r.kind,
      action: r.action,
      outcome: r.outcome,
      prompt_tokens: r.prompt_tokens,
      completion_tokens: r.completion_tokens,
    })),
    verify,
  })}\n`,
);
