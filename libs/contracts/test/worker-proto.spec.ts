import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, WORKER_PACKAGE, WORKER_PROTO_FILE, WORKER_SERVICE } from '../src/index.js';

describe('worker contract', () => {
  const definition = loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS);

  it('defines the worker service with streaming generation and unary status', () => {
    const service = definition[`${WORKER_PACKAGE}.${WORKER_SERVICE}`] as Record<
      string,
      { responseStream: boolean }
    >;
    expect(Object.keys(service).sort()).toEqual(['Chat', 'Complete', 'Embed', 'GetStatus', 'Tokenize']);
    expect(service.Chat.responseStream).toBe(true);
    expect(service.Complete.responseStream).toBe(true);
    expect(service.GetStatus.responseStream).toBe(false);
  });
});
