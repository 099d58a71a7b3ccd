// One fuzz case: a (mutated) bootstrap parsed, its metadata validated and every distinct
// chunk read with digest validation, as `nydus-image check --blob-dir` does. The answer
// is a pass, a typed error (NydusError, one line), or a crash: anything else thrown.
import { checkImage } from '../../src/image/check.js';
import { toolConfig } from '../../src/image/open-image.js';
import { NydusError } from '../../src/errors.js';
import { parseBootstrap } from '../../src/rafs/index.js';
import { createStorage } from '../../src/storage/factory.js';

export type CaseOutcome =
  | { result: 'pass'; chunkFailures: number }
  | { result: 'error'; code: string }
  | { result: 'crash'; error: string };

function typed(err: unknown): CaseOutcome {
  if (err instanceof NydusError && !err.message.includes('\n')) return { result: 'error', code: err.code };
  return { result: 'crash', error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

/** Runs `bytes` through the parser, the validator and the chunk reader over the blobs in `blobDir`. */
export async function runCase(bytes: Buffer, blobDir: string): Promise<CaseOutcome> {
  let sb;
  try {
    sb = parseBootstrap(bytes);
  } catch (err) {
    return typed(err);
  }
  let storage;
  try {
    storage = await createStorage((await toolConfig({ blobDir }, true))!, sb, { memoryCacheBytes: 0 });
    const summary = await checkImage('<fuzz>', sb, storage);
    for (const f of summary.chunk_failures) {
      if (f.message.includes('\n') || !f.code.startsWith('ERR_')) return { result: 'crash', error: `untyped chunk failure: ${JSON.stringify(f)}` };
    }
    return { result: 'pass', chunkFailures: summary.chunk_failures.length };
  } catch (err) {
    return typed(err);
  } finally {
    await storage?.close();
  }
}
