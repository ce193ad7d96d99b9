import { execFile, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// The witness sinks besides the file, against loopback listeners started here: RFC 5424 syslog over TCP and
// TLS (octet-counted frames), and an HTTP endpoint. They take every checkpoint after it is committed, and a
// receiver that hangs or fails neither blocks appends nor checkpoints; it only counts a failure.
const run = promisify(execFile);

/** A syslog receiver: collects the MSG part of each octet-counted RFC 5424 frame. */
const openSockets = new Set<Socket>();
function syslogReceiver(messages: string[]): (socket: Socket) => void {
  return (socket) => {
    openSockets.add(socket);
    socket.on('close', () => openSockets.delete(socket));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) return;
        const length = Number(buffer.subarray(0, space).toString('ascii'));
        if (buffer.length < space + 1 + length) return;
        messages.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
        buffer = buffer.subarray(space + 1 + length);
      }
    });
  };
}

const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

// The TLS receiver's certificate comes from the system's openssl; without it the suite is skipped, and says so.
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl)
  process.stderr.write('witness-sinks.test: skipped: openssl is not installed (apt-get install openssl)\n');

(hasOpenssl ? describe : describe.skip)('witness sinks: syslog (TCP, TLS) and HTTP', () => {
  let database: TestDatabase;
  let running: RunningTestApp;
  const tcpMessages: string[] = [];
  const tlsMessages: string[] = [];
  const httpBodies: string[] = [];
  const servers: Server[] = [];
  let tlsCa = '';

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    // A server certificate for 127.0.0.1 from the system's openssl (no network).
    const key = join(database.dataDir, 'syslog-key.pem');
    const cert = join(database.dataDir, 'syslog-cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=syslog-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    tlsCa = await readFile(cert, 'utf8');
    const tcp = createTcpServer(syslogReceiver(tcpMessages));
    const tls = createTlsServer(
      { key: await readFile(key, 'utf8'), cert: tlsCa },
      syslogReceiver(tlsMessages),
    );
    const http = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        httpBodies.push(body);
        response.writeHead(204).end();
      });
    });
    servers.push(tcp, tls, http);
    const [tcpPort, tlsPort, httpPort] = [await listen(tcp), await listen(tls), await listen(http)];
    const caFile = join(database.dataDir, 'syslog-ca.pem');
    await writeFile(caFile, tlsCa);
    running = await startTestApp(database, {
      witnessSyslogUrl: `tcp://127.0.0.1:${tcpPort}`,
      witnessHttpUrl: `http://127.0.0.1:${httpPort}/witness`,
    });
    // The TLS receiver is the second syslog sink, added like the settings would (one URL per setting).
    await running.stop();
    running = await startTestApp(database, {
      witnessSyslogUrl: `tls://127.0.0.1:${tlsPort}`,
      witnessSyslogCaFile: caFile,
      witnessHttpUrl: `http://127.0.0.1:${httpPort}/witness`,
    });
  });

  afterAll(async () => {
    await running?.stop();
    for (const socket of openSockets) socket.destroy();
    for (const server of servers) {
      (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      server.close();
    }
    await database?.drop();
  });

  const traffic = async (n: number) => {
    for (let index = 0; index < n; index += 1) {
      const id = requestId('sink');
      await running.client.authorize({
        credential: running.adminKey,
        action: 'ACTION_LIST_MODELS',
        requestId: id,
      });
    }
  };

  it('delivers every checkpoint, exactly as the witness file holds it, to syslog over TLS and HTTP', async () => {
    await traffic(3);
    await running.app.checkpointNow();
    await traffic(2);
    await running.app.checkpointNow();
    await running.app.flushWitnessSinks();
    const fileLines = (await readFile(running.app.witnessFile, 'utf8')).trim().split('\n');
    // The first app (TCP syslog) signed at its shutdown; the TLS one signed twice since.
    const lastTwo = fileLines.slice(-2);
    expect(tlsMessages).toHaveLength(2);
    tlsMessages.forEach((message, index) => {
      expect(message).toMatch(/^<109>1 \d{4}-\d\d-\d\dT[^ ]+Z \S+ airlock-auth-audit \d+ checkpoint - \{/);
      expect(message.slice(message.indexOf('{'))).toBe(lastTwo[index]);
    });
    expect(httpBodies.slice(-2)).toEqual(lastTwo);
    // The TCP receiver got the shutdown checkpoint of the first app, the file's first line.
    expect(tcpMessages).toHaveLength(1);
    expect(tcpMessages[0].slice(tcpMessages[0].indexOf('{'))).toBe(fileLines[0]);
  });

  it('a receiver that hangs neither blocks appends nor checkpoints; its failure is counted', async () => {
    let held: ServerResponse | undefined;
    const hanging = createHttpServer((_request, response) => (held = response));
    servers.push(hanging);
    const port = await listen(hanging);
    await running.stop();
    running = await startTestApp(database, { witnessHttpUrl: `http://127.0.0.1:${port}/` });
    await traffic(2);
    const signed = await running.app.checkpointNow();
    expect(signed).toBeDefined();
    await traffic(2); // appends go on while the sink waits
    const fileLines = (await readFile(running.app.witnessFile, 'utf8')).trim().split('\n');
    expect(JSON.parse(fileLines.at(-1)!).tree_size).toBe(signed!.sequence);
    for (let attempt = 0; attempt < 100 && !held; attempt += 1) await new Promise((r) => setTimeout(r, 20));
    held!.writeHead(500).end();
    await running.app.flushWitnessSinks();
    expect(
      await running.app.metrics.registry.getSingleMetricAsString('airlock_audit_witness_failures_total'),
    ).toMatch(/airlock_audit_witness_failures_total\{sink="http"\} 1/);
    expect(await running.client.verifyAuditChain({ credential: running.adminKey })).toMatchObject({
      ok: true,
    });
  });
});
