// A network stand-in for the registry benchmark: a TCP proxy on loopback that adds half
// the round-trip time in each direction and paces everything the registry sends through
// one shared link of the given bandwidth, so that "pull the whole blob" and "fetch what
// start-up needs" are compared over something like a real network rather than loopback.
// Order is kept per connection; the upstream is paused while too much is queued.
import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface Shaper {
  host: string;
  close(): Promise<void>;
}

const MAX_QUEUED = 8 << 20;

/** Starts a shaping proxy in front of `127.0.0.1:upstreamPort`. */
export async function startShaper(upstreamPort: number, opts: { mbit: number; rttMs: number }): Promise<Shaper> {
  const bytesPerMs = (opts.mbit * 1e6) / 8 / 1000;
  const half = opts.rttMs / 2;
  let linkFreeAt = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
    }
    let lastUp = 0;
    client.on('data', (d: Buffer) => {
      lastUp = performance.now() + half;
      setTimeout(() => up.write(d), half);
    });
    client.on('end', () => setTimeout(() => up.end(), Math.max(0, lastUp - performance.now())));
    let queued = 0;
    let lastDown = 0;
    up.on('data', (d: Buffer) => {
      const now = performance.now();
      const start = Math.max(now + half, linkFreeAt);
      const done = start + d.length / bytesPerMs;
      linkFreeAt = done;
      lastDown = done;
      queued += d.length;
      if (queued > MAX_QUEUED) up.pause();
      setTimeout(() => {
        client.write(d);
        queued -= d.length;
        if (queued <= MAX_QUEUED / 2) up.resume();
      }, done - now);
    });
    up.on('end', () => setTimeout(() => client.end(), Math.max(0, lastDown - performance.now())));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
