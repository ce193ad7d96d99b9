// 4 concurrent streams: worker gRPC directly (llama-server engine) vs its own child's HTTP? Measures decodes too.
import { Metadata } from '@grpc/grpc-js';
import { createWorkerClient } from '@airlock/contracts';
const [addr, model, streams, tokens] = process.argv.slice(2);
const client = createWorkerClient(addr);
const one = () => new Promise((res, rej) => { let n = 0; const c = client.Complete({ model, prompt: 'Once upon a time', sampling: { temperature: 0, maxTokens: Number(tokens) } }, new Metadata()); c.on('data', (e) => { if (e.textDelta) n++; }); c.on('error', rej); c.on('end', () => res(n)); });
await one();
const t = performance.now();
const counts = await Promise.all(Array.from({ length: Number(streams) }, async () => (await one()) + (await one())));
const s = (performance.now() - t) / 1000;
console.log(JSON.stringify({ streams, tokPerS: counts.reduce((a, b) => a + b) / s, s }));
client.close();
