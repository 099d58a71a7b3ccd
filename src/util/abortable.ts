// Racing a promise against an AbortSignal: the caller stops waiting when the signal
// aborts, while the work behind the promise runs on (it may be shared with others).

/** `p`, or a rejection with the signal's reason once `signal` aborts (at once if it has). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
