// FUSE INIT: negotiates the protocol minor, flags and limits with the kernel
// and records the outcome as InitParams, a JSON-serializable object. A process
// that takes over a live connection never sees INIT again, so it restores the
// same InitParams from the upgrade state instead of negotiating.
import { FuseError } from '../errors.js';
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, InitFlag, InitOut, Size, hasFlag, splitFlags } from './abi.js';

/** What the daemon asks for at INIT; the kernel's offer caps everything. */
export interface InitOptions {
  /** Largest readahead in bytes (default: what the kernel offers). */
  maxReadahead?: number;
  /** Background (async) requests the kernel may queue (default 64). */
  maxBackground?: number;
  /** Background count at which the kernel reports congestion (default 3/4 of maxBackground). */
  congestionThreshold?: number;
  /** Largest WRITE payload; sizes the request buffers (default 128 KiB). */
  maxWrite?: number;
  /** Largest request in pages, i.e. READ size / 4 KiB (default 256: 1 MiB reads). */
  maxPages?: number;
  /** READDIRPLUS use when the FileSystem has readdirplus (default 'auto'). */
  readdirplus?: 'off' | 'always' | 'auto';
  /** FUSE_EXPORT_SUPPORT: the FileSystem answers lookups of "." and ".." (default false). */
  exportSupport?: boolean;
  /** FUSE_CACHE_SYMLINKS (default true: an image never changes). */
  cacheSymlinks?: boolean;
  /** FUSE_ASYNC_READ (default true). */
  asyncRead?: boolean;
  /** FUSE_PARALLEL_DIROPS (default true). */
  parallelDirops?: boolean;
  /**
   * FUSE_ASYNC_DIO (default false): an asynchronous O_DIRECT read (a loop device's) goes
   * out as concurrent READs of up to maxPages each instead of one at a time.
   */
  asyncDio?: boolean;
}

/** The negotiated connection parameters; everything a new process needs to resume without INIT. */
export interface InitParams {
  major: number;
  /** Negotiated minor: min(kernel's, ours). */
  minor: number;
  kernelMinor: number;
  /** Flags the kernel offered (64-bit set held in a number). */
  kernelFlags: number;
  /** Flags we replied (64-bit set held in a number). */
  flags: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

/** What the FileSystem implements, as far as INIT cares. */
export interface FsCapabilities {
  readdirplus: boolean;
}

/**
 * Outcome of an INIT request: negotiated (reply body sized for the minor),
 * a newer major to answer with ours (the kernel then retries), or an errno.
 */
export type InitOutcome =
  | { kind: 'ok'; params: InitParams; reply: Buffer }
  | { kind: 'major'; reply: Buffer }
  | { kind: 'error'; errno: number };

const EPROTO = 71;

/** Decodes fuse_init_in (16 or 64 bytes, by kernel minor) and negotiates. */
export function negotiateInit(body: Buffer, caps: FsCapabilities, opts: InitOptions = {}): InitOutcome {
  if (body.length < 8) return { kind: 'error', errno: EPROTO };
  const major = body.readUInt32LE(0);
  const kernelMinor = body.readUInt32LE(4);
  if (major < FUSE_KERNEL_VERSION) return { kind: 'error', errno: EPROTO };
  if (major > FUSE_KERNEL_VERSION) {
    // The kernel retries with our major once it sees it (protocol rule).
    const reply = Buffer.alloc(Size.INIT_OUT_COMPAT);
    reply.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
    reply.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 4);
    return { kind: 'major', reply };
  }
  const maxReadaheadIn = body.length >= 12 ? body.readUInt32LE(8) : 0;
  const low = body.length >= 16 ? body.readUInt32LE(12) : 0;
  const high = body.length >= 20 && low & InitFlag.INIT_EXT ? body.readUInt32LE(16) : 0;
  const kernelFlags = low + high * 2 ** 32;
  const minor = Math.min(kernelMinor, FUSE_KERNEL_MINOR_VERSION);

  let flags = 0;
  const want = (bit: number, on: boolean): void => {
    if (on && hasFlag(kernelFlags, bit)) flags += bit;
  };
  want(InitFlag.ASYNC_READ, opts.asyncRead ?? true);
  want(InitFlag.PARALLEL_DIROPS, opts.parallelDirops ?? true);
  want(InitFlag.ASYNC_DIO, opts.asyncDio ?? false);
  want(InitFlag.EXPORT_SUPPORT, opts.exportSupport ?? false);
  want(InitFlag.CACHE_SYMLINKS, opts.cacheSymlinks ?? true);
  want(InitFlag.MAX_PAGES, minor >= 28);
  want(InitFlag.BIG_WRITES, true);
  // ECONNABORTED instead of ENODEV after an abort tells "aborted" from "unmounted".
  want(InitFlag.ABORT_ERROR, true);
  const rdp = caps.readdirplus ? (opts.readdirplus ?? 'auto') : 'off';
  want(InitFlag.DO_READDIRPLUS, rdp !== 'off');
  want(InitFlag.READDIRPLUS_AUTO, rdp === 'auto' && hasFlag(kernelFlags, InitFlag.DO_READDIRPLUS));
  want(InitFlag.INIT_EXT, true);

  const maxBackground = clamp(opts.maxBackground ?? 64, 1, 0xffff);
  const params: InitParams = {
    major: FUSE_KERNEL_VERSION,
    minor,
    kernelMinor,
    kernelFlags,
    flags,
    maxReadahead: Math.min(maxReadaheadIn, opts.maxReadahead ?? maxReadaheadIn),
    maxBackground,
    congestionThreshold: clamp(opts.congestionThreshold ?? Math.ceil((maxBackground * 3) / 4), 1, maxBackground),
    maxWrite: clamp(opts.maxWrite ?? 128 * 1024, 4096, 16 * 1024 * 1024),
    timeGran: 1,
    maxPages: hasFlag(flags, InitFlag.MAX_PAGES) ? clamp(opts.maxPages ?? 256, 1, 0xffff) : 32,
  };
  return { kind: 'ok', params, reply: encodeInitOut(params) };
}

/** fuse_init_out for `params`, truncated to the size the negotiated minor expects. */
export function encodeInitOut(p: InitParams): Buffer {
  const b = Buffer.alloc(Size.INIT_OUT);
  const [low, high] = splitFlags(p.flags);
  b.writeUInt32LE(p.major, InitOut.MAJOR);
  b.writeUInt32LE(p.minor, InitOut.MINOR);
  b.writeUInt32LE(p.maxReadahead >>> 0, InitOut.MAX_READAHEAD);
  b.writeUInt32LE(low, InitOut.FLAGS);
  b.writeUInt16LE(p.maxBackground, InitOut.MAX_BACKGROUND);
  b.writeUInt16LE(p.congestionThreshold, InitOut.CONGESTION_THRESHOLD);
  b.writeUInt32LE(p.maxWrite >>> 0, InitOut.MAX_WRITE);
  b.writeUInt32LE(p.timeGran, InitOut.TIME_GRAN);
  if (hasFlag(p.flags, InitFlag.MAX_PAGES)) b.writeUInt16LE(p.maxPages, InitOut.MAX_PAGES);
  if (hasFlag(p.flags, InitFlag.INIT_EXT)) b.writeUInt32LE(high, InitOut.FLAGS2);
  const size = p.minor < 5 ? Size.INIT_OUT_COMPAT : p.minor < 23 ? Size.INIT_OUT_COMPAT_22 : Size.INIT_OUT;
  return b.subarray(0, size);
}

/** Checks saved parameters before a restore; throws ERR_FUSE_SESSION when they cannot be used. */
export function validateInitParams(p: unknown): InitParams {
  const o = p as Record<string, unknown> | null;
  const keys: (keyof InitParams)[] = [
    'major', 'minor', 'kernelMinor', 'kernelFlags', 'flags', 'maxReadahead',
    'maxBackground', 'congestionThreshold', 'maxWrite', 'timeGran', 'maxPages',
  ];
  for (const k of keys) {
    const v = o?.[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new FuseError('ERR_FUSE_SESSION', `failed to restore FUSE INIT parameters: ${k} is ${JSON.stringify(v)}`);
    }
  }
  const params = o as unknown as InitParams;
  if (params.major !== FUSE_KERNEL_VERSION || params.minor > FUSE_KERNEL_MINOR_VERSION) {
    throw new FuseError('ERR_FUSE_SESSION', `failed to restore FUSE INIT parameters: protocol ${params.major}.${params.minor} is not supported`);
  }
  return params;
}

/** Bytes a /dev/fuse read buffer needs for these parameters (the kernel refuses smaller reads). */
export function requestBufferSize(maxWrite: number): number {
  const need = Math.max(8192, Size.IN_HEADER + 40 + maxWrite);
  return Math.ceil(need / 4096) * 4096;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(v)));
}
