// A nydusd under the test supervisor, serving the v5 fixture at /v5 (from --bootstrap) and
// the v6 fixture at /v6 (mounted through the API) (with `--fs-driver erofs`, which serves
// v6 only: the v6 fixture at /v6 from --bootstrap), with the three sequences real
// supervisors drive: nydus-snapshotter's hot upgrade, upstream's smoke-test hot upgrade,
// and failover after kill -9 (docs/contract.md §4.2–4.4). Each step is timed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { MountCmd } from '../../src/daemon/control.js';
import { cleanStale, viewsDirOf } from '../../src/daemon/erofs-driver.js';
import { linkBlobs } from '../api/nydusd-process.js';
import { configJson } from '../fs/helpers.js';
import { haveFixtures, isMounted, isRoot, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { Daemon, TestSupervisor } from './supervisor.js';

/** Prerequisites of every test here; false (skipped) when missing outside CI. */
export function canRun(t: TestContext): boolean {
  return need(t, isRoot() && existsSync('/dev/fuse') && haveFixtures(), 'hot upgrade tests need root, /dev/fuse and the fixtures');
}

/** Timings of one handover, ms since the epoch (performance.timeOrigin + now()). */
export interface Handover {
  kind: 'upgrade-snapshotter' | 'upgrade-smoke' | 'failover';
  /** When the predecessor stopped reading (exit asked, or killed). */
  stopped: number;
  /** When the successor was RUNNING. */
  running: number;
}

export const now = (): number => performance.timeOrigin + performance.now();

/** The supervised daemon and its files under one temp dir. */
export class Rig {
  readonly dir: string;
  readonly mnt: string;
  readonly sup: TestSupervisor;
  readonly baseArgs: string[];
  readonly v6Cmd: MountCmd;
  /** Served by the kernel's erofs (--fs-driver erofs): only /v6. */
  readonly erofs: boolean;
  current!: Daemon;
  /** Runs once in each handover while no daemon serves (the old one is gone, the new one not started). */
  duringGap: (() => void) | undefined;
  #sockN = 0;
  readonly #all: Daemon[] = [];

  private constructor(extraArgs: string[]) {
    this.dir = mkdtempSync('/tmp/upgrade-test-');
    this.mnt = join(this.dir, 'mnt');
    mkdirSync(this.mnt);
    this.erofs = extraArgs.join(' ').includes('--fs-driver erofs');
    const blobs5 = linkBlobs(V5_FIXTURE, join(this.dir, 'blobs5'));
    const blobs6 = linkBlobs(V6_FIXTURE, join(this.dir, 'blobs6'));
    this.sup = new TestSupervisor(join(this.dir, 'supervisor.sock'));
    const [fixture, blobs, at] = this.erofs ? [V6_FIXTURE, blobs6, '/v6'] : [V5_FIXTURE, blobs5, '/v5'];
    this.baseArgs = [
      '--mountpoint', this.mnt, '--bootstrap', join(fixture, 'bootstrap'), '--localfs-dir', blobs, '--virtual-mountpoint', at,
      '--id', 'upgrade-test', '--supervisor', this.sup.sock, '--state-dir', join(this.dir, 'state'), '--log-level', 'info', ...extraArgs,
    ];
    this.v6Cmd = { source: join(V6_FIXTURE, 'bootstrap'), fs_type: 'rafs', config: configJson(blobs6, blobs6, {}), prefetch_files: null };
  }

  /** The mountpoints this rig's daemons serve. */
  get mountpoints(): string[] {
    return this.erofs ? ['/v6'] : ['/v5', '/v6'];
  }

  /**
   * Starts the first daemon (RUNNING, /v5 and /v6 mounted) and fetches its state; torn down
   * in `t.after` (a test's context, or the bench's own list of cleanups).
   */
  static async start(t: Pick<TestContext, 'after'>, extraArgs: string[] = []): Promise<Rig> {
    const rig = new Rig(extraArgs);
    t.after(() => rig.teardown());
    rig.current = rig.spawn([]);
    await rig.current.waitState('RUNNING');
    if (!rig.erofs) await rig.current.client.mount('/v6', rig.v6Cmd);
    await rig.sup.fetch(rig.current.client);
    return rig;
  }

  /**
   * Spawns nydusd with `base` (default: the base arguments) plus `extra`, on a fresh API
   * socket unless `apisock` is given; it is killed at teardown.
   */
  spawn(extra: string[], apisock = join(this.dir, `api-${this.#sockN++}.sock`), base: readonly string[] = this.baseArgs): Daemon {
    const d = new Daemon([...base, ...extra], apisock);
    this.#all.push(d);
    return d;
  }

  /** nydus-snapshotter's order: new --upgrade → INIT → takeover while the old one serves → READY → old exit → new start. */
  async upgradeSnapshotter(): Promise<Handover> {
    const old = this.current;
    const offered = this.sup.offer();
    const next = this.spawn(['--upgrade']);
    await next.waitState('INIT');
    await next.client.takeover();
    await offered;
    await next.waitState('READY');
    const stopped = now();
    await old.client.exit();
    await old.exited;
    old.client.close();
    this.duringGap?.();
    await next.client.start();
    await next.waitState('RUNNING');
    const running = now();
    this.current = next;
    await this.sup.fetch(next.client);
    return { kind: 'upgrade-snapshotter', stopped, running };
  }

  /**
   * Upstream's smoke test order: old sendfd, new --upgrade (a mount before the takeover is
   * refused and ignored), old exit before the takeover, sendfd on the new daemon in READY, start.
   */
  async upgradeSmoke(): Promise<Handover> {
    const old = this.current;
    await this.sup.fetch(old.client);
    const next = this.spawn(['--upgrade']);
    await next.waitState('INIT');
    if (!this.erofs) await next.client.mount('/v6', this.v6Cmd).catch(() => undefined);
    const stopped = now();
    await old.client.exit();
    await old.exited;
    old.client.close();
    this.duringGap?.();
    const offered = this.sup.offer();
    await next.client.takeover();
    await offered;
    await next.waitState('READY');
    await this.sup.fetch(next.client);
    await next.client.start();
    await next.waitState('RUNNING');
    const running = now();
    this.current = next;
    return { kind: 'upgrade-smoke', stopped, running };
  }

  /**
   * kill -9, then the same command line with no --upgrade: crash detection, INIT, takeover,
   * start. `afterKill` runs between the two (to break something on purpose).
   */
  async failover(opts: { afterKill?: () => void } = {}): Promise<Handover> {
    const old = this.current;
    const stopped = now();
    await old.kill9();
    old.client.close();
    this.duringGap?.();
    opts.afterKill?.();
    const next = this.spawn([], old.apisock, old.args.filter((a) => a !== '--upgrade'));
    await next.waitState('INIT');
    const offered = this.sup.offer();
    await next.client.takeover();
    await offered;
    await next.waitState('READY');
    await next.client.start();
    await next.waitState('RUNNING');
    const running = now();
    this.current = next;
    await this.sup.fetch(next.client);
    return { kind: 'failover', stopped, running };
  }

  /** For a failure report: this rig's mounts and loop devices, and each daemon's state and last log lines. */
  describe(): string[] {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(this.dir));
    const loops = (spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.includes(this.dir));
    const daemons = this.#all.map((d, i) => {
      const log = d.stderr.trimEnd().split('\n').slice(-12).join('\n    ');
      return `daemon ${i} pid ${d.child.pid} ${d.running ? 'running' : `exited ${d.child.exitCode ?? d.child.signalCode}`}${d === this.current ? ' (current)' : ''}:\n    ${log}`;
    });
    return [`mounts under ${this.dir}:`, ...mounts, 'loop devices:', ...loops, ...daemons];
  }

  async teardown(): Promise<void> {
    for (const d of this.#all) d.close();
    await Promise.all(this.#all.map((d) => d.exited));
    this.sup.close();
    if (this.erofs) await cleanStale(this.mnt, viewsDirOf(join(this.dir, 'state')));
    if (isMounted(this.mnt)) spawnSync('umount', ['-l', this.mnt]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
