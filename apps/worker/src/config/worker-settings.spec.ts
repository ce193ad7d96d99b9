import { readWorkerSettings } from './worker-settings.js';

describe('worker settings', () => {
  it('uses the documented defaults', () => {
    const settings = readWorkerSettings({ AIRLOCK_MODEL: 'm.gguf', AIRLOCK_INTERNAL_PLAINTEXT: 'true' });
    expect(settings).toMatchObject({
      grpcHost: '127.0.0.1',
      grpcPort: 50061,
      opsPort: 9402,
      drainTimeoutSeconds: 30,
    });
    expect(settings.dataDir.endsWith('/data')).toBe(true);
    expect(settings.defaultThreads).toBeUndefined();
  });

  it('reads the default thread count for models whose entry names none', () => {
    const env = { AIRLOCK_MODEL: 'm.gguf', AIRLOCK_INTERNAL_PLAINTEXT: 'true', AIRLOCK_WORKER_THREADS: '3' };
    expect(readWorkerSettings(env).defaultThreads).toBe(3);
  });

  it.each([
    [{ AIRLOCK_MODEL: 'm.gguf', AIRLOCK_GRPC_PORT: 'eighty' }, /AIRLOCK_GRPC_PORT/],
    [{ AIRLOCK_MODEL: 'm.gguf', AIRLOCK_LOG_LEVEL: 'loud' }, /AIRLOCK_LOG_LEVEL/],
    [{ AIRLOCK_MODEL: 'm.gguf', AIRLOCK_WORKER_THREADS: '0' }, /AIRLOCK_WORKER_THREADS/],
    [{}, /set AIRLOCK_MODEL .* or AIRLOCK_MODELS_FILE/],
    [{ AIRLOCK_MODEL: 'm.gguf' }, /AIRLOCK_TLS_CA_FILE.*AIRLOCK_INTERNAL_PLAINTEXT=true/],
  ])('stops on %p with a message naming the variable', (env, message) => {
    expect(() => readWorkerSettings(env)).toThrow(message);
  });
});
