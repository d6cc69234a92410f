// A minimal GGUF v3 serializer (little-endian): metadata key/values and F32 tensors.
// Format reference: ggml's docs/gguf.md.

const ALIGNMENT = 32;

enum ValueType {
  UINT16 = 2,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}

const GGML_TYPE_F32 = 0;

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  pad(to: number): void {
    const rem = this.length % to;
    if (rem) this.push(Buffer.alloc(to - rem));
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

interface Tensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

/** A tensor written by the caller after `header()`: ggml type id and its byte length. */
export interface TensorInfo {
  name: string;
  dims: number[];
  type: number;
  byteLength: number;
}

export const GGML_TYPE_F32_ID = GGML_TYPE_F32;
export const GGML_TYPE_Q8_0 = 8;
/** Q8_0: blocks of 32 values, each an f16 scale and 32 int8s. */
export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** A tensor's bytes rounded up to the data alignment (the writer pads after each tensor). */
export function paddedSize(byteLength: number): number {
  return Math.ceil(byteLength / ALIGNMENT) * ALIGNMENT;
}

export class GgufBuilder {
  private kv = new ByteSink();
  private kvCount = 0;
  private tensors: Tensor[] = [];

  private key(name: string, type: ValueType): void {
    this.kv.str(name);
    this.kv.u32(type);
    this.kvCount++;
  }
  uint16(name: string, v: number): void {
    this.key(name, ValueType.UINT16);
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.kv.push(b);
  }
  int32(name: string, v: number): void {
    this.key(name, ValueType.INT32);
    this.kv.i32(v);
  }
  uint32(name: string, v: number): void {
    this.key(name, ValueType.UINT32);
    this.kv.u32(v);
  }
  float32(name: string, v: number): void {
    this.key(name, ValueType.FLOAT32);
    this.kv.f32(v);
  }
  bool(name: string, v: boolean): void {
    this.key(name, ValueType.BOOL);
    this.kv.push(Buffer.from([v ? 1 : 0]));
  }
  string(name: string, v: string): void {
    this.key(name, ValueType.STRING);
    this.kv.str(v);
  }
  stringArray(name: string, values: string[]): void {
    this.key(name, ValueType.ARRAY);
    this.kv.u32(ValueType.STRING);
    this.kv.u64(values.length);
    for (const v of values) this.kv.str(v);
  }
  float32Array(name: string, values: number[]): void {
    this.key(name, ValueType.ARRAY);
    this.kv.u32(ValueType.FLOAT32);
    this.kv.u64(values.length);
    for (const v of values) this.kv.f32(v);
  }
  int32Array(name: string, values: number[]): void {
    this.key(name, ValueType.ARRAY);
    this.kv.u32(ValueType.INT32);
    this.kv.u64(values.length);
    for (const v of values) this.kv.i32(v);
  }
  /** dims in ggml order: dims[0] is the fastest-varying (row length). */
  tensor(name: string, dims: number[], data: Float32Array): void {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`tensor ${name}: ${data.length} values for dims ${dims.join("x")}`);
    this.tensors.push({ name, dims, data });
  }

  build(): Buffer {
    return GgufBuilder.file(this.kv.concat(), this.kvCount, this.tensors);
  }

  /**
   * The model as `count` files in llama.cpp's gguf-split layout (tools/gguf-split): the tensors
   * in order, split evenly by number; every part carries `split.no` (u16, 0-based), `split.count`
   * (u16) and `split.tensors.count` (i32, all parts together); only the first holds the other
   * metadata. Each part's tensor offsets are relative to its own data section.
   */
  buildSplit(count: number): Buffer[] {
    if (count <= 1) return [this.build()];
    if (count > this.tensors.length) throw new Error(`cannot split ${this.tensors.length} tensors into ${count} parts`);
    const per = Math.ceil(this.tensors.length / count);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const split = new GgufBuilder();
      split.uint16("split.no", i);
      split.uint16("split.count", count);
      split.int32("split.tensors.count", this.tensors.length);
      const kv = i === 0 ? Buffer.concat([this.kv.concat(), split.kv.concat()]) : split.kv.concat();
      const tensors = this.tensors.slice(i * per, (i + 1) * per);
      if (tensors.length === 0) throw new Error(`cannot split ${this.tensors.length} tensors into ${count} non-empty parts`);
      parts.push(GgufBuilder.file(kv, (i === 0 ? this.kvCount : 0) + split.kvCount, tensors));
    }
    return parts;
  }

  /**
   * The header (metadata and tensor infos, padded) of a file whose tensor data the caller streams
   * after it: each tensor's bytes in this order, each padded to the alignment (see tensorDataSize).
   */
  header(tensors: readonly TensorInfo[]): Buffer {
    const out = new ByteSink();
    out.push(Buffer.from("GGUF", "ascii"));
    out.u32(3);
    out.u64(tensors.length);
    out.u64(this.kvCount);
    out.push(this.kv.concat());
    let offset = 0;
    for (const t of tensors) {
      out.str(t.name);
      out.u32(t.dims.length);
      for (const dim of t.dims) out.u64(dim);
      out.u32(t.type);
      out.u64(offset);
      offset += paddedSize(t.byteLength);
    }
    out.pad(ALIGNMENT);
    return out.concat();
  }

  private static file(kv: Buffer, kvCount: number, tensors: readonly Tensor[]): Buffer {
    const out = new ByteSink();
    out.push(Buffer.from("GGUF", "ascii"));
    out.u32(3);
    out.u64(tensors.length);
    out.u64(kvCount);
    out.push(kv);
    let offset = 0;
    const offsets: number[] = [];
    for (const t of tensors) {
      out.str(t.name);
      out.u32(t.dims.length);
      for (const dim of t.dims) out.u64(dim);
      out.u32(GGML_TYPE_F32);
      out.u64(offset);
      offsets.push(offset);
      offset += Math.ceil(t.data.byteLength / ALIGNMENT) * ALIGNMENT;
    }
    out.pad(ALIGNMENT);
    for (const t of tensors) {
      out.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      out.pad(ALIGNMENT);
    }
    return out.concat();
  }
}
