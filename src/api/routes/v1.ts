// Upstream's v1 endpoints (docs/contract.md §2.3): daemon info and log level, error
// events, the RAFS superblock of a mount, lifecycle (start, exit, sendfd, takeover),
// image mounts, metrics and the registry-auth config store. Each handler only decodes
// the request, calls DaemonControl and encodes its answer.
import type { DaemonControl, MountCmd } from '../../daemon/control.js';
import { V1 } from '../paths.js';
import { parseConfigMap, parseDaemonConf, parseMountCmd } from '../parse-body.js';
import { redactConfigValues } from '../redact.js';
import { queryParam, requestError, requireMountpoint } from '../request.js';
import type { ApiContext } from '../request.js';
import { rustDebugString } from '../upstream-errors.js';
import { sendJson, sendNoContent } from './endpoint.js';
import type { Endpoint, MethodHandler } from './endpoint.js';

const LOG_LEVELS = new Set(['off', 'error', 'warn', 'info', 'debug', 'trace']);
const FS_TYPES = new Set(['rafs', 'passthrough', 'passthroughfs', 'passthrough_fs']);
/** The only keys upstream's config store takes (HEAD api/src/http.rs). */
const CONFIG_KEYS: ReadonlySet<string> = new Set(['registry_auth', 'proxy_url', 'dragonfly_scheduler_endpoint']);

/** PUT /api/{v1,v2}/daemon: a log level upstream's `LevelFilter` parses (case-insensitive). */
export function setLogLevelHandler(control: DaemonControl): MethodHandler {
  return {
    wrapper: 'Configure',
    body: 'json',
    async run(ctx) {
      const { log_level } = parseDaemonConf(ctx.state.body!);
      const level = log_level.toLowerCase();
      if (!LOG_LEVELS.has(level)) {
        throw requestError('ERR_API_BAD_REQUEST', 'Configure(ResponsePayloadType)', `failed to set log level: unknown level ${JSON.stringify(log_level)}`, 500);
      }
      await control.setLogLevel(level);
      sendNoContent(ctx);
    },
  };
}

function checkFsType(fsType: string): void {
  if (FS_TYPES.has(fsType)) return;
  const text = `invalid argument \`only 'rafs' and 'passthrough_fs' are supported, but ${fsType} was specified\``;
  throw requestError(
    'ERR_CONFIG_INVALID',
    `Mount(MountFilesystem(Other(${rustDebugString(text)})))`,
    `failed to mount: fs_type ${JSON.stringify(fsType)} is not one of rafs, passthrough_fs`,
    500,
  );
}

function metricsHandler(control: DaemonControl, kind: 'fs' | 'pattern' | 'backend' | 'blobcache', wrapper: MethodHandler['wrapper']): MethodHandler {
  return {
    wrapper,
    body: 'none',
    run(ctx) {
      sendJson(ctx, control.metrics(kind, { id: queryParam(ctx, 'id') }));
    },
  };
}

function lifecycle(run: () => Promise<void>, wrapper: MethodHandler['wrapper'], event?: string): MethodHandler {
  return {
    wrapper,
    event,
    body: 'none',
    async run(ctx: ApiContext) {
      await run();
      sendNoContent(ctx);
    },
  };
}

/** POST (mount) and PUT (remount) /api/v1/mount: the body is a MountCmd with a known fs_type. */
function mountWith(apply: (mountpoint: string, cmd: MountCmd) => Promise<void>): MethodHandler {
  return {
    wrapper: 'Mount',
    body: 'json',
    async run(ctx: ApiContext) {
      const cmd = parseMountCmd(ctx.state.body!);
      checkFsType(cmd.fs_type);
      await apply(requireMountpoint(ctx), cmd);
      sendNoContent(ctx);
    },
  };
}

/** The v1 endpoints served from `control`. */
export function v1Endpoints(control: DaemonControl): Endpoint[] {
  return [
    {
      path: V1.daemon,
      methods: {
        GET: { wrapper: 'DaemonInfo', body: 'none', run: (ctx) => sendJson(ctx, control.info()) },
        PUT: setLogLevelHandler(control),
      },
    },
    {
      path: V1.events,
      methods: { GET: { wrapper: 'Events', body: 'none', run: (ctx) => sendJson(ctx, control.errorEvents()) } },
    },
    {
      path: V1.backend,
      methods: {
        GET: { wrapper: 'FsBackendInfo', body: 'none', run: (ctx) => sendJson(ctx, control.backendInfo(requireMountpoint(ctx))) },
      },
    },
    { path: V1.start, methods: { PUT: lifecycle(() => control.start(), 'Configure', 'Start') } },
    { path: V1.exit, methods: { PUT: lifecycle(() => control.exit(), 'Configure', 'Exit') } },
    { path: V1.sendFd, methods: { PUT: lifecycle(() => control.sendFd(), 'Upgrade') } },
    { path: V1.takeover, methods: { PUT: lifecycle(() => control.takeover(), 'Upgrade', 'Takeover') } },
    {
      path: V1.mount,
      // Upstream reads the mountpoint before it looks at the method.
      precheck: (ctx) => void requireMountpoint(ctx),
      methods: {
        POST: mountWith((mp, cmd) => control.mount(mp, cmd)),
        PUT: mountWith((mp, cmd) => control.remount(mp, cmd)),
        DELETE: {
          wrapper: 'Mount',
          body: 'none',
          async run(ctx) {
            await control.umount(requireMountpoint(ctx));
            sendNoContent(ctx);
          },
        },
      },
    },
    { path: V1.metrics, methods: { GET: metricsHandler(control, 'fs', 'GlobalMetrics') } },
    {
      path: V1.metricsFiles,
      methods: {
        GET: {
          wrapper: 'FsFilesMetrics',
          body: 'none',
          run(ctx) {
            // Rust's `bool::from_str`: exactly "true"; anything else is false.
            const latest = queryParam(ctx, 'latest') === 'true';
            sendJson(ctx, control.metrics('files', { id: queryParam(ctx, 'id'), latest }));
          },
        },
      },
    },
    { path: V1.metricsPattern, methods: { GET: metricsHandler(control, 'pattern', 'Pattern') } },
    { path: V1.metricsBackend, methods: { GET: metricsHandler(control, 'backend', 'BackendMetrics') } },
    { path: V1.metricsBlobcache, methods: { GET: metricsHandler(control, 'blobcache', 'BlobcacheMetrics') } },
    {
      path: V1.metricsInflight,
      methods: {
        GET: {
          wrapper: 'InflightMetrics',
          body: 'none',
          run(ctx) {
            const inflight = control.inflight();
            if (inflight.length === 0) sendNoContent(ctx);
            else sendJson(ctx, inflight);
          },
        },
      },
    },
    {
      path: V1.config,
      methods: {
        GET: { wrapper: 'Configure', body: 'none', run: (ctx) => sendJson(ctx, redactConfigValues(control.getConfig(queryParam(ctx, 'id')))) },
        PUT: {
          wrapper: 'Configure',
          body: 'json',
          async run(ctx) {
            const values = parseConfigMap(ctx.state.body!);
            const unknown = Object.keys(values).filter((k) => !CONFIG_KEYS.has(k));
            if (unknown.length > 0) {
              throw requestError(
                'ERR_API_BAD_REQUEST',
                'Configure(ResponsePayloadType)',
                `failed to update config: unknown key ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${[...CONFIG_KEYS].join(', ')})`,
                500,
              );
            }
            await control.putConfig(queryParam(ctx, 'id') ?? '', values);
            sendNoContent(ctx);
          },
        },
      },
    },
  ];
}
