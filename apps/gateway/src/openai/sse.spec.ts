import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SseWriter } from './sse.js';

/** A real HTTP server on loopback: the writer's bytes as a client reads them. */
async function served(write: (sse: SseWriter) => Promise<void>): Promise<string> {
  const server: Server = createServer((_request, response) => {
    void write(new SseWriter(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    return await response.text();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('SseWriter', () => {
  it('writes data-only events and [DONE] for chat and completions', async () => {
    const text = await served(async (sse) => {
      sse.open();
      await sse.send({ a: 1 });
      await sse.done();
    });
    expect(text).toBe('data: {"a":1}\n\ndata: [DONE]\n\n');
  });

  it('names an event on its own event: line (the Responses API)', async () => {
    const text = await served(async (sse) => {
      sse.open();
      await sse.send({ type: 'response.created', sequence_number: 0 }, 'response.created');
      await sse.send({ type: 'response.completed', sequence_number: 1 }, 'response.completed');
      sse.end();
    });
    expect(text).toBe(
      'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n' +
        'event: response.completed\ndata: {"type":"response.completed","sequence_number":1}\n\n',
    );
  });
});
