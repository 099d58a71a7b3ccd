// The project's extensions, under /api/v1 beside upstream's paths: the lifecycle
// machine with the current state and recent path (for `nydusctl machine`), the event
// journal in pages (for `nydusctl events`, `--follow` polls it) and the metrics in
// Prometheus text format. Upstream clients never call these.
import type { DaemonControl, JournalRecord } from '../../daemon/control.js';
import { EXT } from '../paths.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../prometheus.js';
import { redactMachineView, redactRecord } from '../redact.js';
import { badRequest, queryParam } from '../request.js';
import type { ApiContext } from '../request.js';
import { sendJson } from './endpoint.js';
import type { Endpoint } from './endpoint.js';

/** Records per journal page unless `limit` says otherwise, and the most one page holds. */
const JOURNAL_PAGE = { default: 1000, max: 10000 } as const;

/** GET /api/v1/daemon/journal answer. */
export interface JournalPage {
  /** Records with seq > `since`, oldest first, mount configs redacted. */
  records: JournalRecord[];
  /** The `since` to ask for next: the last record's seq (or the request's `since` when none). */
  next_since: number;
  /** True when more records were stored than this page holds. */
  more: boolean;
}

function intParam(ctx: ApiContext, key: string, fallback: number, min: number, max: number): number {
  const raw = queryParam(ctx, key);
  if (raw === undefined) return fallback;
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw badRequest(`failed to read journal: ${key}=${JSON.stringify(raw)} is not an integer in [${min}, ${max}]`);
  return n;
}

/** The extension endpoints served from `control`. */
export function extEndpoints(control: DaemonControl): Endpoint[] {
  return [
    {
      path: EXT.machine,
      methods: { GET: { wrapper: 'DaemonInfo', body: 'none', run: (ctx) => sendJson(ctx, redactMachineView(control.machine())) } },
    },
    {
      path: EXT.journal,
      methods: {
        GET: {
          wrapper: 'Events',
          body: 'none',
          async run(ctx) {
            const since = intParam(ctx, 'since', 0, 0, Number.MAX_SAFE_INTEGER);
            const limit = intParam(ctx, 'limit', JOURNAL_PAGE.default, 1, JOURNAL_PAGE.max);
            // One record more than asked tells whether another page follows.
            const got = await control.journal({ sinceSeq: since, limit: limit + 1 });
            const records = got.slice(0, limit).map(redactRecord);
            const page: JournalPage = { records, next_since: records.at(-1)?.seq ?? since, more: got.length > limit };
            sendJson(ctx, page);
          },
        },
      },
    },
    {
      path: EXT.prometheus,
      methods: {
        GET: {
          wrapper: 'GlobalMetrics',
          body: 'none',
          run(ctx) {
            ctx.state.contentType = PROMETHEUS_CONTENT_TYPE;
            ctx.status = 200;
            ctx.body = renderPrometheus(control);
          },
        },
      },
    },
  ];
}
