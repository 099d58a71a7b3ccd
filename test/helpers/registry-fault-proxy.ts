// The tests' fault-injecting TCP proxy, put between a backend and a real registry. It
// reads the head of the first request on each new client connection and asks the
// current plan what to do with it: pass it through (the connection is then spliced to
// the registry and stays a plain pipe), forward just this request (`close`: the
// connection ends after the answer, so the next request is inspected too), answer a
// status itself, reset the connection, stall, or forward it late (`delay`) or with the
// response damaged (a flipped body byte, a body cut short, a body that stalls midway).
// All but `pass` force `Connection: close` so every request after them is inspected
// again; setPlan() drops spliced connections for the same reason. Counts connections,
// requests and faults.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Agent } from 'undici';
import type { HttpConnection } from '../../src/storage/backend/connection.js';
import type { Owner } from './registry-server.js';
import { waitUntil } from './wait.js';

export type Fault =
  | { kind: 'pass' }
  | { kind: 'close' }
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  | { kind: 'stall' }
  | { kind: 'delay'; ms: number }
  | { kind: 'corrupt'; at?: number }
  | { kind: 'truncate'; after: number }
  | { kind: 'stall-body'; after: number };

/** The head of a request, as the plan sees it. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export type FaultPlan = (req: ProxiedRequest, n: number) => Fault;

export interface FaultProxy {
  host: string;
  port: number;
  stats: { connections: number; requests: number; faults: Record<string, number> };
  /** Replaces the plan and closes spliced connections so new requests are inspected. */
  setPlan(plan: FaultPlan): void;
  /** Points the proxy at another upstream port. */
  setUpstream(port: number): void;
}

/**
 * Resolves once the client has seen every connection of `connection` close: after
 * setPlan() dropped the spliced ones, its next request opens a new one that the plan sees.
 */
export async function clientConnectionsClosed(connection: HttpConnection): Promise<void> {
  const agent = connection.agent as Agent;
  await waitUntil(() => Object.values(agent.stats).every((pool) => pool.connected === 0), 'the client saw its connections close');
}

const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

function parseHead(head: Buffer): ProxiedRequest {
  const lines = head.toString('latin1').split('\r\n');
  const [method, path] = lines[0].split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { method, path, headers };
}

/** `head` with `Connection: close`, so the registry ends the connection after one answer. */
function closingHead(head: Buffer): Buffer {
  const lines = head.toString('latin1').split('\r\n').filter((l) => l !== '' && !/^connection:/i.test(l));
  return Buffer.from(lines.join('\r\n') + '\r\nConnection: close\r\n\r\n', 'latin1');
}

/** Starts a proxy on loopback in front of `127.0.0.1:upstreamPort`; closed when the test ends. */
export async function startFaultProxy(t: Owner, upstreamPort: number, plan: FaultPlan = () => ({ kind: 'pass' })): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const spliced = new Set<Socket>();
  let current = plan;
  let upstream = upstreamPort;
  const stats = { connections: 0, requests: 0, faults: {} as Record<string, number> };
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      spliced.delete(s);
    });
    s.on('error', () => {});
    return s;
  };

  const forward = (client: Socket, head: Buffer, rest: Buffer, fault: Fault): void => {
    const up = track(connect(upstream, '127.0.0.1'));
    let stalled = false;
    up.on('error', () => {
      if (!stalled) client.destroy();
    });
    // A stalled answer keeps the client waiting even after the registry hangs up.
    up.on('close', () => {
      if (!stalled) client.end();
    });
    client.on('close', () => up.destroy());
    if (fault.kind === 'pass') {
      spliced.add(client);
      up.write(Buffer.concat([head, rest]));
      client.pipe(up);
      up.pipe(client);
      return;
    }
    up.write(Buffer.concat([closingHead(head), rest]));
    client.pipe(up);
    let headerDone = false;
    let pending = Buffer.alloc(0);
    let bodySeen = 0;
    up.on('data', (chunk: Buffer) => {
      if (stalled) return;
      let data = chunk;
      if (!headerDone) {
        pending = Buffer.concat([pending, data]);
        const end = pending.indexOf(HEAD_END);
        if (end < 0) return;
        headerDone = true;
        client.write(pending.subarray(0, end + 4));
        data = pending.subarray(end + 4);
      }
      if (data.length === 0) return;
      const from = bodySeen;
      bodySeen += data.length;
      if (fault.kind === 'corrupt') {
        const at = fault.at ?? 0;
        if (at >= from && at < bodySeen) {
          data = Buffer.from(data);
          data[at - from] ^= 0xff;
        }
        client.write(data);
      } else if (fault.kind === 'truncate' || fault.kind === 'stall-body') {
        const keep = Math.max(0, Math.min(data.length, fault.after - from));
        if (keep > 0) client.write(data.subarray(0, keep));
        if (bodySeen >= fault.after) {
          stalled = true;
          if (fault.kind === 'truncate') {
            up.destroy();
            client.destroy();
          } else up.pause();
        }
      } else {
        client.write(data);
      }
    });
  };

  const server: Server = createServer((client) => {
    stats.connections++;
    track(client);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        if (buf.length > MAX_HEAD) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const head = buf.subarray(0, end + 4);
      const rest = buf.subarray(end + 4);
      const req = parseHead(head);
      const fault = current(req, stats.requests++);
      stats.faults[fault.kind] = (stats.faults[fault.kind] ?? 0) + 1;
      switch (fault.kind) {
        case 'status':
          client.end(`HTTP/1.1 ${fault.status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
          return;
        case 'reset':
          client.resetAndDestroy();
          return;
        case 'stall':
          return;
        case 'delay':
          setTimeout(() => forward(client, head, rest, { kind: 'close' }), fault.ms);
          return;
        default:
          forward(client, head, rest, fault);
      }
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    host: `127.0.0.1:${port}`,
    port,
    stats,
    setPlan(p) {
      current = p;
      for (const s of spliced) s.destroy();
    },
    setUpstream(p) {
      upstream = p;
    },
  };
}
