// Shared by the API tests: a real server on a unix socket in a private temp dir over a
// FakeControl, a client, and a raw HTTP exchange for what a client library would never
// send (chunked bodies, bad lengths, HTTP/1.0).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { ApiResponse } from '../../src/api/client.js';
import { startApiServer } from '../../src/api/server.js';
import { Journal } from '../../src/daemon/journal.js';
import { FakeControl } from './fake-control.js';
import type { FakeOptions } from './fake-control.js';
import { assertSchema } from './schema.js';

/** A temp dir under /tmp/api-*. */
export function tmpDir(tag = 'test'): string {
  return mkdtempSync(`/tmp/api-${tag}-`);
}

/** A served FakeControl. */
export interface Served {
  control: FakeControl;
  sock: string;
  dir: string;
  client: ApiClient;
  logs: string[];
  close(): Promise<void>;
}

/** Serves a FakeControl on `<tmp>/api.sock`. */
export async function serveFake(opts: FakeOptions = {}): Promise<Served> {
  const dir = tmpDir();
  const sock = join(dir, 'api.sock');
  const control = new FakeControl(opts);
  const logs: string[] = [];
  const logger = { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`), error: (m: string) => logs.push(`error ${m}`) };
  const server = await startApiServer(control, sock, logger);
  const client = new ApiClient(sock);
  return {
    control,
    sock,
    dir,
    client,
    logs,
    async close() {
      client.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** serveFake over a real Journal in its own temp dir (`/tmp/api-<tag>-*`); close() also closes and removes it. */
export async function serveFakeWithJournal(tag: string, opts: FakeOptions = {}): Promise<Served> {
  const jdir = tmpDir(tag);
  const journal = await Journal.open(jdir);
  const served = await serveFake({ ...opts, journal });
  return {
    ...served,
    async close() {
      await served.close();
      await journal.close();
      rmSync(jdir, { recursive: true, force: true });
    },
  };
}

/** A parsed raw HTTP response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection after this response. */
  closed: boolean;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status, headers };
}

/** An open connection that sends raw bytes and reads one response at a time. */
export class RawConnection {
  readonly socket: Socket;
  #buf = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static open(sock: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = createConnection(sock);
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  async #until(pred: () => boolean): Promise<void> {
    while (!pred()) {
      if (this.#closed) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
  }

  /** Reads the next response (the body per Content-Length; none for 204). */
  async read(): Promise<RawResponse> {
    await this.#until(() => this.#buf.includes('\r\n\r\n'));
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`connection closed before a response: ${JSON.stringify(this.#buf.toString())}`);
    const { status, headers } = parseHead(this.#buf.subarray(0, end).toString('latin1'));
    const len = Number(headers['content-length'] ?? 0);
    await this.#until(() => this.#buf.length >= end + 4 + len);
    const body = this.#buf.subarray(end + 4, end + 4 + len).toString('utf8');
    this.#buf = this.#buf.subarray(end + 4 + len);
    if (headers.connection === 'close') await this.#until(() => false);
    return { status, headers, body, closed: this.#closed };
  }

  /** Waits until the server closes the connection, or `ms` pass; true when it closed. */
  async waitClosed(ms: number): Promise<boolean> {
    if (this.#closed) return true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    return this.#closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends one raw request on a new connection and reads its response. */
export async function rawRequest(sock: string, data: string | Buffer): Promise<RawResponse> {
  const c = await RawConnection.open(sock);
  try {
    c.send(data);
    return await c.read();
  } finally {
    c.close();
  }
}

/** Asserts the headers every answer carries and returns the parsed body (null for none). */
export function checked(res: ApiResponse, status: number): unknown {
  assert.equal(res.status, status, `status ${res.status}: ${res.text}`);
  assert.equal(res.headers.server, 'Nydus API');
  assert.equal(res.headers['content-type'], 'application/json');
  if (status === 204) {
    assert.equal(res.text, '');
    return null;
  }
  return JSON.parse(res.text);
}

/** Asserts an upstream error answer: status, exact message, our code, schema. */
export function failed(res: ApiResponse, status: number, message: string, errorCode?: string): void {
  const body = checked(res, status) as { code: string; message: string; error_code: string };
  assertSchema('v1', 'ErrorMsg', body);
  assert.equal(body.code, 'UNDEFINED');
  assert.equal(body.message, message);
  if (errorCode !== undefined) assert.equal(body.error_code, errorCode);
}

