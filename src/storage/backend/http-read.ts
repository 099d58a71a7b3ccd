// What the HTTP backends share on the read path: copying a range response straight into
// the caller's buffer (no intermediate copies; a server that ignores Range is handled by
// skipping to the offset and hanging up once the range is in), what a HEAD or a failed
// range GET means, and withRetries: one operation run up to `retry_limit` more times when
// it fails transiently (util/retry.ts), each retry and the final failure published.
import type { Dispatcher } from 'undici';
import { StorageError } from '../../errors.js';
import { abandon, describeNetworkError, discard, header, isTransient, statusError } from '../../http/client.js';
import { retry } from '../../util/retry.js';
import { errorChannel, publish, retryChannel } from './events.js';

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

function transient(message: string): StorageError {
  return new StorageError('ERR_STORAGE_BACKEND', message, { detail: { retryable: true } });
}

function shortRead(what: string, offset: number, len: number, size: number): StorageError {
  return new StorageError('ERR_STORAGE_SHORT_READ', `failed to read ${what}: range [${offset}, ${offset + len}) is beyond its size ${size}`);
}

/**
 * Fills `buf` with bytes `[offset, offset + buf.length)` from a 200 or 206 response body.
 * A 206 must cover exactly the requested range; a body that ends early is a transient
 * error, a blob too small for the range is ERR_STORAGE_SHORT_READ.
 */
export async function copyRangeBody(res: Dispatcher.ResponseData, buf: Uint8Array, offset: number, what: string): Promise<void> {
  const len = buf.length;
  let skip = 0;
  if (res.statusCode === 206) {
    const m = CONTENT_RANGE.exec(header(res.headers, 'content-range') ?? '');
    if (m === null) {
      abandon(res.body);
      throw transient(`failed to read ${what}: partial answer without a valid Content-Range`);
    }
    const [start, end] = [Number(m[1]), Number(m[2])];
    const total = m[3] === '*' ? Infinity : Number(m[3]);
    if (start !== offset || end - start + 1 !== len) {
      abandon(res.body);
      if (offset + len > total) throw shortRead(what, offset, len, total);
      throw transient(`failed to read ${what}: asked for bytes ${offset}-${offset + len - 1}, got ${start}-${end}`);
    }
  } else {
    const size = Number(header(res.headers, 'content-length') ?? NaN);
    if (Number.isSafeInteger(size) && offset + len > size) {
      abandon(res.body);
      throw shortRead(what, offset, len, size);
    }
    skip = offset;
  }
  let got = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      let piece = chunk;
      if (skip > 0) {
        if (piece.length <= skip) {
          skip -= piece.length;
          continue;
        }
        piece = piece.subarray(skip);
        skip = 0;
      }
      const take = Math.min(piece.length, len - got);
      if (take > 0) buf.set(take === piece.length ? piece : piece.subarray(0, take), got);
      got += take;
      // A 206 is read to its end so the connection can be reused; of a whole blob
      // (200) the rest is not needed and the connection is dropped instead.
      if (got === len && res.statusCode !== 206) break;
    }
  } catch (err) {
    throw transient(`failed to read ${what}: ${describeNetworkError(err)} after ${got} of ${len} bytes`);
  } finally {
    // Leaving the loop early (the range is in, or an error) must not leak the socket.
    if (!res.body.readableEnded) abandon(res.body);
  }
  if (got < len) throw transient(`failed to read ${what}: body ended after ${got} of ${len} bytes`);
}

/** Throws ERR_STORAGE_SHORT_READ for an offset that no blob can have. */
export function checkReadOffset(blobId: string, offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new StorageError('ERR_STORAGE_SHORT_READ', `failed to read blob ${blobId}: invalid offset ${offset}`);
  }
}

/** The blob size a HEAD answer gives (Content-Length of a 200); a 404 throws `notFound()`. */
export async function sizeFromHead(res: Dispatcher.ResponseData, blobId: string, notFound: () => StorageError): Promise<number> {
  await discard(res.body);
  if (res.statusCode === 404) throw notFound();
  if (res.statusCode !== 200) throw statusError(`get the size of blob ${blobId}`, res.statusCode);
  const size = Number(header(res.headers, 'content-length'));
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new StorageError('ERR_STORAGE_BACKEND', `failed to get the size of blob ${blobId}: no valid Content-Length`);
  }
  return size;
}

/**
 * The error a range GET of `[offset, offset + len)` stands for when it answered neither
 * 200 nor 206 (its body is discarded): `notFound()` for a 404, ERR_STORAGE_SHORT_READ for a
 * 416, else the status (retryable when the server may recover).
 */
export async function rangeReadError(
  res: Dispatcher.ResponseData,
  what: string,
  offset: number,
  len: number,
  notFound: () => StorageError,
): Promise<StorageError> {
  await discard(res.body);
  if (res.statusCode === 404) return notFound();
  if (res.statusCode === 416) {
    return new StorageError('ERR_STORAGE_SHORT_READ', `failed to read ${what}: range [${offset}, ${offset + len}) is beyond its end`);
  }
  return statusError(`read ${what}`, res.statusCode);
}

/** Where a retried operation belongs, for events and messages. */
export interface RetryContext {
  backend: string;
  id: string;
  blobId?: string;
  /** Extra attempts after the first (`retry_limit`). */
  retryLimit: number;
  signal?: AbortSignal;
  /** What the operation does, e.g. `read blob <id>`. */
  what: string;
}

/**
 * Runs `op` until it succeeds, fails permanently, or has failed `retryLimit + 1` times,
 * with backoff between attempts (util/retry.ts), publishing each retry. The final error is a
 * StorageError (network errors are wrapped as ERR_STORAGE_BACKEND) and is published on the
 * error channel.
 */
export function withRetries<T>(ctx: RetryContext, op: (attempt: number) => Promise<T>): Promise<T> {
  const event = { backend: ctx.backend, id: ctx.id, blobId: ctx.blobId };
  return retry(
    {
      retries: ctx.retryLimit,
      retryable: isTransient,
      signal: ctx.signal,
      onRetry: (err, attempt, delay) =>
        publish(retryChannel, {
          level: 'warn',
          ...event,
          attempt,
          message: `failed to ${ctx.what} (attempt ${attempt} of ${ctx.retryLimit + 1}): ${describeNetworkError(err)}; retrying in ${delay} ms`,
        }),
      giveUp: (err, tries) => {
        const final =
          err instanceof StorageError ? err : new StorageError('ERR_STORAGE_BACKEND', `failed to ${ctx.what}: ${describeNetworkError(err)}`, { cause: err });
        publish(errorChannel, {
          level: 'error',
          ...event,
          attempt: tries,
          message: tries > 1 ? `${final.message} (gave up after ${tries} attempts)` : final.message,
        });
        return final;
      },
    },
    op,
  );
}
