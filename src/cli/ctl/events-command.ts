// `nydusctl events`: the daemon's journal as a timeline, read page by page from
// GET /api/v1/daemon/journal; `--follow` keeps polling for new records and ends quietly
// when the daemon goes away. `--json` prints one record per line (JSON lines).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { JournalRecord } from '../../daemon/journal-records.js';
import { ConfigError, NydusError } from '../../errors.js';
import { print, withClient } from './context.js';

/** One line of the timeline for a journal record. */
function describeRecord(r: JournalRecord): string {
  switch (r.type) {
    case 'start':
      return `daemon pid ${r.pid} started${r.input.awaitingTakeover ? ', waiting for a takeover' : ''}${r.input.journalDeferred ? ', journal held by its predecessor' : ''}`;
    case 'event':
      return `event ${r.event} (${r.reason}) in ${r.state}${r.data?.mountpoint === undefined ? '' : ` for ${r.data.mountpoint}`}${r.data?.id === undefined ? '' : ` for id ${JSON.stringify(r.data.id)}`}`;
    case 'actor':
      return r.ok ? `${r.actor} done` : `${r.actor} failed: ${r.error.code}: ${r.error.message}`;
    case 'outcome':
      return r.ok ? `${r.event} (#${r.of}) done` : `${r.event} (#${r.of}) failed: ${r.error.code}: ${r.error.message}`;
    case 'transition':
      return `${r.from} -> ${r.to} on ${r.event}`;
    case 'mount':
    case 'remount':
      return `${r.type} ${r.mountpoint} <- ${r.source} (${r.fsType})`;
    case 'umount':
      return `umount ${r.mountpoint}`;
    case 'log-level':
      return `log level ${r.level}`;
    case 'snapshot':
      return `snapshot of earlier records: state ${r.state.lastState ?? '-'}, ${r.state.mounts.length} mount(s), log level ${r.state.logLevel ?? '-'}`;
  }
}

function parseNonNegative(name: string, raw: string): number {
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new ConfigError('ERR_CLI_USAGE', `failed to parse ${name} ${raw}: not a non-negative integer`);
  return n;
}


/** Registers `events` on `program`. */
export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('print the daemon journal (events, transitions, mounts) as a timeline')
    .option('--follow', 'keep printing new records until the daemon goes away')
    .option('--since <seq>', 'start after this record number', '0')
    .option('--interval <ms>', 'how often --follow polls', '500')
    .action((o: { follow?: boolean; since: string; interval: string }, cmd: Command) =>
      withClient(cmd, async (c, opts) => {
        let since = parseNonNegative('--since', o.since);
        const interval = Math.max(10, parseNonNegative('--interval', o.interval));
        let reached = false;
        for (;;) {
          let page;
          try {
            page = await c.journal(since);
          } catch (err) {
            // While following, the daemon leaving (exit, SIGTERM) is the end of the story.
            if (o.follow && reached && err instanceof NydusError && err.code === 'ERR_API_UNAVAILABLE') {
              process.stderr.write('nydusctl: the daemon is gone; stopped following\n');
              return;
            }
            throw err;
          }
          reached = true;
          for (const r of page.records) print(opts.json ? JSON.stringify(r) + '\n' : `#${r.seq}  ${r.time}  ${describeRecord(r)}\n`);
          since = page.next_since;
          if (page.more) continue;
          if (!o.follow) return;
          await sleep(interval);
        }
      }),
    );
}
