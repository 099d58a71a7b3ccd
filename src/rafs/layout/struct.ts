// Fixed-size on-disk structs described once, as a table of fields (`name: [offset, type]`),
// instead of a hand-written decoder and encoder that each repeat every offset. The table
// is checked when the module loads (every field inside the struct's size, no two fields
// overlapping), so a wrong offset fails at import rather than writing a corrupt image.
// Bytes only, like the rest of layout/: decoding bounds-checks and never aliases `buf`.
import { checkRange, copyBytes, readPaddedString, readU64, writePaddedString, writeU64 } from './common.js';

/**
 * How one field is stored: a little-endian unsigned integer (u64 must stay below 2^53),
 * `bytes:N` raw bytes (decoded as a copy; encoded from at most N bytes of the value), or
 * `latin1:N` a NUL-padded string.
 */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | `bytes:${number}` | `latin1:${number}`;

/** The field types a property of type `V` may be stored as. */
type FieldTypeFor<V> = V extends number
  ? 'u8' | 'u16' | 'u32' | 'u64'
  : V extends Buffer
    ? `bytes:${number}`
    : V extends string
      ? `latin1:${number}`
      : never;

/**
 * `[offset, type]` for every property of `T`, in the order decoded objects list them.
 * Every property must appear (the compiler checks it), with a type that fits its value.
 */
export type StructFields<T> = { readonly [K in keyof T]-?: readonly [offset: number, type: FieldTypeFor<T[K]>] };

export interface StructSpec<T> {
  /** Names the struct in errors: `failed to read <name>: ...`. */
  name: string;
  /** Bytes the struct occupies; bytes no field covers are reserved (written as zeros). */
  size: number;
  fields: StructFields<T>;
  /** Names the struct at `off` in u64 overflow errors (default: `name`). */
  where?: (off: number) => string;
}

/** A struct's decoder and encoder, both driven by its field table. */
export interface StructCodec<T> {
  readonly name: string;
  readonly size: number;
  /** The struct at `off`; ERR_RAFS_TRUNCATED when it does not fit `buf`, ERR_RAFS_CORRUPT for a u64 >= 2^53. */
  decode(buf: Buffer, off: number): T;
  /** A fresh buffer of `size` bytes; a value that does not fit its field is a RangeError. */
  encode(value: T): Buffer;
}

type Kind = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes' | 'latin1';

interface Field {
  name: string;
  offset: number;
  kind: Kind;
  len: number;
}

const WIDTH: Partial<Record<Kind, number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

function parseFields(name: string, size: number, fields: Record<string, readonly [number, FieldType]>): Field[] {
  const out = Object.entries(fields).map(([field, [offset, type]]): Field => {
    const [kind, n] = type.split(':') as [Kind, string | undefined];
    return { name: field, offset, kind, len: WIDTH[kind] ?? Number(n) };
  });
  const byOffset = [...out].sort((a, b) => a.offset - b.offset);
  byOffset.forEach((f, i) => {
    const prev = byOffset[i - 1];
    if (!Number.isSafeInteger(f.offset) || f.offset < 0 || !(f.len > 0) || f.offset + f.len > size) {
      throw new RangeError(`struct ${name}: field ${f.name} [${f.offset}, +${f.len}) is outside its ${size} bytes`);
    }
    if (prev !== undefined && prev.offset + prev.len > f.offset) {
      throw new RangeError(`struct ${name}: fields ${prev.name} and ${f.name} overlap`);
    }
  });
  return out;
}

/** Checks a struct's field table and returns its codec. */
export function defineStruct<T>(spec: StructSpec<T>): StructCodec<T> {
  const { name, size } = spec;
  const where = spec.where ?? (() => name);
  const fields = parseFields(name, size, spec.fields as Record<string, readonly [number, FieldType]>);
  return {
    name,
    size,
    decode(buf: Buffer, off: number): T {
      checkRange(buf, off, size, name);
      let w: string | undefined;
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const at = off + f.offset;
        switch (f.kind) {
          case 'u8':
            out[f.name] = buf.readUInt8(at);
            break;
          case 'u16':
            out[f.name] = buf.readUInt16LE(at);
            break;
          case 'u32':
            out[f.name] = buf.readUInt32LE(at);
            break;
          case 'u64':
            out[f.name] = readU64(buf, at, (w ??= where(off)));
            break;
          case 'bytes':
            out[f.name] = copyBytes(buf, at, f.len);
            break;
          case 'latin1':
            out[f.name] = readPaddedString(buf, at, f.len);
            break;
        }
      }
      return out as T;
    },
    encode(value: T): Buffer {
      const buf = Buffer.alloc(size);
      const v = value as Record<string, unknown>;
      for (const f of fields) {
        switch (f.kind) {
          case 'u8':
            buf.writeUInt8(v[f.name] as number, f.offset);
            break;
          case 'u16':
            buf.writeUInt16LE(v[f.name] as number, f.offset);
            break;
          case 'u32':
            buf.writeUInt32LE(v[f.name] as number, f.offset);
            break;
          case 'u64':
            writeU64(buf, f.offset, v[f.name] as number);
            break;
          case 'bytes':
            (v[f.name] as Buffer).copy(buf, f.offset, 0, f.len);
            break;
          case 'latin1':
            writePaddedString(buf, f.offset, f.len, v[f.name] as string);
            break;
        }
      }
      return buf;
    },
  };
}
