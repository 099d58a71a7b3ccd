// Removes secrets from what the API hands out of the journal. The journal keeps each
// mount's config exactly as received (registry auth included, file mode 0600, so a
// failover can rebuild mounts); a journal reader such as `nydusctl events` needs the
// shape of the config, never its credentials.
import { redactUrlPasswords } from '../config/derive.js';
import type { JournalRecord, MachineView } from '../daemon/control.js';

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

/** A journal record safe to answer with: mount configs and config store values (also inside snapshots and takeover outputs) redacted. */
export function redactRecord(r: JournalRecord): JournalRecord {
  switch (r.type) {
    case 'mount':
    case 'remount':
      return { ...r, config: redactConfig(r.config) };
    case 'snapshot': {
      const state = { ...r.state, mounts: r.state.mounts.map((m) => ({ ...m, config: redactConfig(m.config) })) };
      return { ...r, state: r.state.config === undefined ? state : { ...state, config: redactConfigValues(r.state.config) } };
    }
    case 'event':
      return r.data?.values === undefined ? r : { ...r, data: { ...r.data, values: redactConfigValues(r.data.values) } };
    case 'actor': {
      if (!r.ok) return r;
      const out = r.output as { config?: Record<string, string> } | undefined;
      return out?.config === undefined ? r : { ...r, output: { ...out, config: redactConfigValues(out.config) } };
    }
    default:
      return r;
  }
}

/** The machine view as GET /api/v1/daemon/machine answers it: the config store in its context redacted. */
export function redactMachineView(v: MachineView): MachineView {
  return { ...v, context: { ...v.context, config: redactConfigValues(v.context.config) } };
}
