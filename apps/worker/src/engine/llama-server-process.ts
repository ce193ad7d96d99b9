import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/** llama-server's own log lines that describe the model or the server, never a request (kept, 160 chars). */
const SAFE_LINE =
  /^(main: |srv +load_model|srv +init|llama_model_load|llama_model_loader: (error|failed)|llama_init_from_model|gguf_init|common_init_from_params|error: |load_backend|build: )/;
const KEPT_LINES = 16;
/** How long a start may take before /health answers 200 (a large model loads from disk first). */
const START_TIMEOUT_MS = 15 * 60_000;
const SETPRIV = '/usr/bin/setpriv';

export class LlamaServerExit extends Error {}

/** An HTTP error answer from llama-server: its status and its error type (never its message, which may quote input). */
export class LlamaServerHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly body: string,
  ) {
    super(`llama-server answered HTTP ${status} (${type || 'no error type'})`);
  }
}

/**
 * One llama-server child process, reachable only by this worker: it listens on a Unix socket in a 0700
 * directory of its own (no TCP port at all) and also requires an unguessable API key, passed in its
 * environment rather than on its command line (which any local user can read in /proc). It dies with the
 * worker even on SIGKILL (setpriv --pdeathsig), its stdout/stderr are never logged verbatim (llama.cpp may
 * quote prompts and grammars): only lines about the model and the server are kept, for error messages.
 */
export class LlamaServerProcess {
  private child?: ChildProcess;
  private dir?: string;
  private readonly apiKey = randomBytes(32).toString('base64url');
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly kept: string[] = [];
  private stopping = false;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  constructor(
    private readonly bin: string,
    private args: string[],
    /** Called when the process ends without stop() having been called. */
    private readonly onUnexpectedExit: (why: string) => void,
  ) {}

  /** The command line (without --host) for the next start. */
  setArgs(args: string[]): void {
    this.args = args;
  }

  get socketPath(): string {
    return join(this.dir!, 'llama-server.sock');
  }

  /** The running child (tests kill it to check that the worker notices). */
  get process(): ChildProcess | undefined {
    return this.child;
  }

  /** Writes a file into the private directory (e.g. a chat template) and returns its path. */
  async privateFile(name: string, text: string): Promise<string> {
    await this.ensureDir();
    const path = join(this.dir!, name);
    await writeFile(path, text, { mode: 0o600 });
    return path;
  }

  /** Starts the process and resolves once /health answers 200; rejects (with kept lines) if it exits first. */
  async start(): Promise<void> {
    try {
      accessSync(this.bin, constants.X_OK);
    } catch {
      throw new Error(
        `llama-server binary ${this.bin} is missing or not executable: build it with ` +
          '"node bench/llama-cpp-build.mjs" or set AIRLOCK_LLAMA_SERVER_BIN',
      );
    }
    await this.ensureDir();
    await rm(this.socketPath, { force: true });
    this.stopping = false;
    this.kept.length = 0;
    const args = ['--host', this.socketPath, ...this.args];
    // Only what llama-server needs: no inherited LLAMA_ARG_* or proxy settings can change where it listens.
    const env: NodeJS.ProcessEnv = { LLAMA_API_KEY: this.apiKey };
    for (const name of ['CUDA_VISIBLE_DEVICES', 'GGML_VK_VISIBLE_DEVICES', 'LD_LIBRARY_PATH']) {
      if (process.env[name] !== undefined) env[name] = process.env[name];
    }
    // Its own process group: a Ctrl-C meant for the worker reaches the worker, which then stops the child itself
    // (after draining), instead of the child dying first and looking like a crash.
    const [command, commandArgs] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', this.bin, ...args]]
      : [this.bin, args];
    const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    process.once('exit', this.killOnExit);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => this.keep(line));
    }
    let ended: string | undefined;
    let serving = false;
    const onEnd = (why: string) => {
      if (ended !== undefined) return;
      ended = why;
      process.removeListener('exit', this.killOnExit);
      if (this.child === child) this.child = undefined;
      // Synchronously, in the exit event itself: nothing can reach a dead child as if it were serving.
      // (An exit while starting is start()'s failure, not a crash to recover from.)
      if (serving && !this.stopping) this.onUnexpectedExit(this.describe(why));
    };
    child.once('error', (error) => onEnd(`cannot start llama-server: ${error.message}`));
    child.once('exit', (code, signal) => onEnd(`llama-server exited (${signal ?? `code ${code}`})`));

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (ended !== undefined) throw new LlamaServerExit(this.describe(ended));
      if (await this.healthy()) {
        serving = true;
        return;
      }
      await sleep(50);
    }
    await this.stop();
    throw new Error(`llama-server did not become healthy in ${START_TIMEOUT_MS / 1000} s`);
  }

  /** Stops the process (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    this.child = undefined;
  }

  /** Stops the process and removes its private directory. */
  async dispose(): Promise<void> {
    await this.stop();
    this.agent.destroy();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  /** One HTTP request on the socket; resolves with the response once its head arrived (status not checked). */
  send(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: { signal?: AbortSignal; stream?: boolean } = {},
  ): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        socketPath: this.socketPath,
        // A stream gets its own connection: closing it is how a cancel reaches llama-server.
        agent: options.stream ? false : this.agent,
        method,
        path,
        signal: options.signal,
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          ...(payload !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(payload);
    });
  }

  /** A JSON request whose answer must be 2xx; anything else becomes a LlamaServerHttpError. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    const text = await readText(response);
    if ((response.statusCode ?? 0) >= 300) throw httpError(response.statusCode ?? 0, text);
    return JSON.parse(text) as T;
  }

  private async healthy(): Promise<boolean> {
    try {
      const response = await this.send('GET', '/health');
      await readText(response);
      return response.statusCode === 200;
    } catch {
      return false;
    }
  }

  private async ensureDir(): Promise<void> {
    if (this.dir) return;
    // Short (a socket path has at most 107 bytes) and private: only this user can even reach the socket.
    this.dir = await mkdtemp(join(tmpdir(), 'airlock-llama-'));
    await chmod(this.dir, 0o700);
  }

  private keep(line: string): void {
    const text = line.trim();
    if (!SAFE_LINE.test(text)) return;
    this.kept.push(text.slice(0, 160).replace(/[^\x20-\x7e]/g, '?'));
    if (this.kept.length > KEPT_LINES) this.kept.shift();
  }

  private describe(why: string): string {
    const last = this.kept.filter((line) => /error|fail|unable|cannot|invalid/i.test(line)).slice(-3);
    return last.length > 0 ? `${why}: ${last.join(' | ')}` : why;
  }
}

export async function readText(response: IncomingMessage): Promise<string> {
  let text = '';
  response.setEncoding('utf8');
  for await (const chunk of response) text += chunk;
  return text;
}

export function httpError(status: number, text: string): LlamaServerHttpError {
  let type = '';
  try {
    type = String((JSON.parse(text) as { error?: { type?: string } }).error?.type ?? '');
  } catch {
    // Not JSON: the status is all there is.
  }
  return new LlamaServerHttpError(status, type, text);
}
