// The FUSE control filesystem (fusectl, mounted by scripts/setup.sh): what the kernel
// says about one connection, which tests wait on instead of guessing a duration.
import { existsSync, readFileSync } from 'node:fs';

const BASE = '/sys/fs/fuse/connections';

/** Whether fusectl shows connection `connId`. */
export function haveFusectl(connId: number): boolean {
  return existsSync(`${BASE}/${connId}/waiting`);
}

/** Requests on connection `connId` that the kernel has not had an answer to yet. */
export function waitingRequests(connId: number): number {
  return Number(readFileSync(`${BASE}/${connId}/waiting`, 'utf8'));
}
