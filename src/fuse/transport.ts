// One small interface over the two ways of serving a FileSystem: the
// project's own /dev/fuse session ("fusedev", the default, which can hand its
// live connection to another process) and libfuse2 through fuse-native
// ("fuse-native", path-based, no handover). The daemon picks one by name.
import { FuseError } from '../errors.js';
import type { FileSystem } from './filesystem.js';
import { FuseNativeMount } from './fuse-native-adapter.js';
import type { InflightRequest } from './protocol-server.js';
import { FuseSession, type SessionEnd, type SessionOptions, type SessionState } from './session.js';

/** Transport names, as `--fuse-impl` takes them. */
export const FUSE_IMPLS = ['fusedev', 'fuse-native'] as const;
export type FuseImpl = (typeof FUSE_IMPLS)[number];

/** A mounted FileSystem, whatever serves it. */
export interface FuseTransport {
  readonly impl: FuseImpl;
  readonly mountpoint: string;
  /** Kernel connection id (/sys/fs/fuse/connections/<id>), when known. */
  readonly connId: number | undefined;
  /** Whether stopReading/resumeReading/exportState/dupFd/notifyResend work. */
  readonly canHandOver: boolean;
  /** Resolves when serving stops (unmounted, aborted, closed). */
  readonly ended: Promise<SessionEnd>;
  inflight(): InflightRequest[];
  stopReading(): Promise<void>;
  resumeReading(): Promise<void>;
  exportState(): SessionState;
  dupFd(): number;
  notifyResend(): Promise<void>;
  unmount(): Promise<void>;
  /** Stops serving without unmounting (after a handover). */
  close(): Promise<void>;
}

class FusedevTransport implements FuseTransport {
  readonly impl = 'fusedev' as const;
  readonly canHandOver = true;
  readonly session: FuseSession;
  constructor(session: FuseSession) {
    this.session = session;
  }
  get mountpoint(): string {
    return this.session.mountpoint;
  }
  get connId(): number {
    return this.session.connId;
  }
  get ended(): Promise<SessionEnd> {
    return this.session.ended;
  }
  inflight(): InflightRequest[] {
    return this.session.inflight();
  }
  stopReading(): Promise<void> {
    return this.session.stopReading();
  }
  resumeReading(): Promise<void> {
    return this.session.resumeReading();
  }
  exportState(): SessionState {
    return this.session.exportState();
  }
  dupFd(): number {
    return this.session.dupFd();
  }
  notifyResend(): Promise<void> {
    return this.session.notifyResend();
  }
  unmount(): Promise<void> {
    return this.session.unmount();
  }
  close(): Promise<void> {
    return this.session.close();
  }
}

const noHandover = (what: string): FuseError =>
  new FuseError(
    'ERR_FUSE_NOT_IMPLEMENTED',
    `failed to ${what}: the fuse-native transport cannot hand over its FUSE connection (libfuse keeps node ids and the connection inside C); use --fuse-impl fusedev`,
  );

class FuseNativeTransport implements FuseTransport {
  readonly impl = 'fuse-native' as const;
  readonly canHandOver = false;
  readonly #mount: FuseNativeMount;
  constructor(mount: FuseNativeMount) {
    this.#mount = mount;
  }
  get mountpoint(): string {
    return this.#mount.mountpoint;
  }
  get connId(): number | undefined {
    return this.#mount.connId;
  }
  get ended(): Promise<SessionEnd> {
    return this.#mount.ended;
  }
  inflight(): InflightRequest[] {
    return this.#mount.inflight();
  }
  async stopReading(): Promise<void> {
    throw noHandover('stop reading');
  }
  async resumeReading(): Promise<void> {
    throw noHandover('resume reading');
  }
  exportState(): SessionState {
    throw noHandover('export the session state');
  }
  dupFd(): number {
    throw noHandover('hand out the FUSE fd');
  }
  async notifyResend(): Promise<void> {
    throw noHandover('resend requests');
  }
  unmount(): Promise<void> {
    return this.#mount.unmount();
  }
  async close(): Promise<void> {
    throw noHandover('stop serving without unmounting');
  }
}

/** Mounts `fs` at `mountpoint` with the named transport. */
export async function mountTransport(impl: FuseImpl, fs: FileSystem, mountpoint: string, opts: SessionOptions = {}): Promise<FuseTransport> {
  switch (impl) {
    case 'fusedev':
      return new FusedevTransport(await FuseSession.mount(fs, mountpoint, opts));
    case 'fuse-native':
      return new FuseNativeTransport(await FuseNativeMount.mount(fs, mountpoint, opts));
    default:
      throw new FuseError('ERR_FUSE_MOUNT', `failed to mount: unknown FUSE implementation ${JSON.stringify(impl)} (expected ${FUSE_IMPLS.join(' or ')})`);
  }
}

/** Serves a connection handed over by another process (fusedev only; see FuseSession.fromFd). */
export async function resumeTransport(fd: number, state: SessionState, fs: FileSystem, opts: SessionOptions & { start?: boolean } = {}): Promise<FuseTransport> {
  return new FusedevTransport(await FuseSession.fromFd(fd, state, fs, opts));
}
