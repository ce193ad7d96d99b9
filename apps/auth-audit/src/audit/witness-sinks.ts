import { connect as connectTcp, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as connectTls } from 'node:tls';
import type { WitnessLine, WitnessSink } from './audit-witness.js';

const TIMEOUT_MS = 5_000;
// RFC 5424 PRI: facility 13 (log audit) × 8 + severity 5 (notice).
const PRI = 13 * 8 + 5;

/**
 * One RFC 5424 message per checkpoint, the witness line as its MSG, over TCP or TLS with octet-counting
 * framing (RFC 6587 3.4.1) — what a SIEM's syslog receiver takes. One connection, opened on demand and
 * re-opened after an error; every step times out, so a dead receiver only fails this sink.
 */
export class SyslogWitnessSink implements WitnessSink {
  readonly name = 'syslog';
  private socket: Socket | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly tls: boolean;

  constructor(
    url: string,
    /** Extra CA certificates (PEM) for a TLS receiver; the system's (and NODE_EXTRA_CA_CERTS) otherwise. */
    private readonly ca?: string,
  ) {
    const parsed = new URL(url);
    this.tls = parsed.protocol === 'tls:';
    this.host = parsed.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(parsed.port || (this.tls ? 6514 : 601));
  }

  static message(line: WitnessLine, host = hostname()): string {
    const header = `<${PRI}>1 ${new Date().toISOString()} ${host || '-'} airlock-auth-audit ${process.pid} checkpoint -`;
    return `${header} ${JSON.stringify(line)}`;
  }

  async publish(line: WitnessLine): Promise<void> {
    const message = Buffer.from(SyslogWitnessSink.message(line), 'utf8');
    const frame = Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
    const socket = await this.connection();
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) =>
          socket.write(frame, (error) => (error ? reject(error) : resolve())),
        ),
        'syslog write',
      );
    } catch (error) {
      this.drop();
      throw error;
    }
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => socket.end(() => resolve()));
  }

  private async connection(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = this.tls
      ? connectTls({ host: this.host, port: this.port, ca: this.ca, servername: this.host })
      : connectTcp({ host: this.host, port: this.port });
    socket.on('error', () => this.drop());
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
    });
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          socket.once(this.tls ? 'secureConnect' : 'connect', () => resolve());
          socket.once('error', reject);
        }),
        'syslog connect',
      );
    } catch (error) {
      socket.destroy();
      throw error;
    }
    this.socket = socket;
    return socket;
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** One HTTP POST (application/json, the witness line) per checkpoint; a non-2xx answer is a failure. */
export class HttpWitnessSink implements WitnessSink {
  readonly name = 'http';

  constructor(private readonly url: string) {}

  async publish(line: WitnessLine): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(line),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`witness endpoint answered ${response.status}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
