// Behind an ingress: the audit records the client's address, not the ingress pod's, but only when the request came
// through a configured proxy (AIRLOCK_TRUSTED_PROXIES); otherwise X-Forwarded-For is a client's claim and ignored.
// Real gateway, auth-audit and worker (stories260K), PGlite.
import { describeWithModels, MODEL, Platform } from './platform.js';

describeWithModels('a gateway behind a proxy', () => {
  const platform = new Platform({ database: 'pglite' });
  let direct: string;
  let proxied: string;

  beforeAll(async () => {
    await platform.start();
    direct = platform.url;
    // 127.0.0.1 stands for the ingress controller: the test's requests arrive from it.
    const behindIngress = await platform.startGateway({ trustedProxies: ['127.0.0.0/8'] });
    proxied = `http://127.0.0.1:${behindIngress.port}`;
  }, 120_000);
  afterAll(() => platform.close());

  const chat = (base: string, requestId: string, forwardedFor: string) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${platform.adminKey}`,
        'content-type': 'application/json',
        'x-request-id': requestId,
        'x-forwarded-for': forwardedFor,
      },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 2 }),
    });

  const addressesOf = async (requestId: string): Promise<string[]> =>
    (await platform.auditRecords(requestId))
      .filter((record) => record.kind === 'request')
      .map((record) => record.client_address as string);

  it("records the client named by a trusted proxy's X-Forwarded-For (the right-most untrusted hop)", async () => {
    // "198.51.100.9" was added by the client itself; the trusted proxy appended the address it saw: 203.0.113.7.
    const response = await chat(proxied, 'req-behind-proxy-1', '198.51.100.9, 203.0.113.7');
    expect(response.status).toBe(200);
    // Records go by the id the gateway issued (the client's own is kept as client_request_id).
    const addresses = await addressesOf(response.headers.get('x-request-id')!);
    expect(addresses).toEqual(['203.0.113.7']);
  });

  it('ignores X-Forwarded-For from anyone else', async () => {
    const response = await chat(direct, 'req-behind-proxy-2', '203.0.113.7');
    expect(response.status).toBe(200);
    const addresses = await addressesOf(response.headers.get('x-request-id')!);
    expect(addresses).toHaveLength(1);
    expect(addresses[0]).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
  });
});
