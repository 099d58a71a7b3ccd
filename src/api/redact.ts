// Removes secrets from what the API hands out of the journal. The journal keeps each
// mount's config exactly as received (registry auth included, file mode 0600, so a
// failover can rebuild mounts); a journal reader such as `nydusctl events` needs the
// shape of the config, never its credentials.
import { redactUrlPasswords } from '../config/derive.js';
import type { JournalRecord } from '../daemon/journal-records.js';

/** Keys whose values are credentials in nydusd configs (registry auth, tokens, OSS/S3 keys). */
const SECRET_KEY = /auth|password|passwd|token|secret|access_key|private_key/i;

/** The marker that replaces a secret value. */
export const REDACTED = '<redacted>';

function redactValue(v: unknown): unknown {
  if (typeof v === 'string') return redactUrlPasswords(v);
  if (Array.isArray(v)) return v.map(redactValue);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) && x !== '' && x !== null ? REDACTED : redactValue(x);
  return out;
}

/** A config JSON string with its secret values replaced; a string that is not JSON is replaced whole. */
export function redactConfig(config: string): string {
  try {
    return JSON.stringify(redactValue(JSON.parse(config)));
  } catch {
    return REDACTED;
  }
}

/** The config store as GET /api/v1/config answers it: `registry_auth` masked, URL passwords too (`proxy_url`). */
export function redactConfigValues(values: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) out[k] = SECRET_KEY.test(k) && v !== '' ? REDACTED : redactUrlPasswords(v);
  return out;
}

/** A journal record safe to answer with: mount configs (also inside snapshots) redacted. */
export function redactRecord(r: JournalRecord): JournalRecord {
  switch (r.type) {
    case 'mount':
    case 'remount':
      return { ...r, config: redactConfig(r.config) };
    case 'snapshot':
      return { ...r, state: { ...r.state, mounts: r.state.mounts.map((m) => ({ ...m, config: redactConfig(m.config) })) } };
    default:
      return r;
  }
}
