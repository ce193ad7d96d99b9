/**
 * The GGUF v3 container, as llama.cpp reads it: a little-endian header, metadata key/values, tensor
 * descriptions, then the tensor data, each tensor starting at a multiple of `general.alignment`.
 * Only what a llama model needs is encoded here; the layout is ggml's `docs/gguf.md`.
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** Metadata value types (`gguf_type`). */
enum GgufValueType {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}

/** Tensor element types (`ggml_type`) this writer produces. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

export const GGML_TYPE_SIZE: Readonly<Record<GgmlType, number>> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };

/** A metadata value with its GGUF type made explicit: JS numbers alone cannot say u32 from f32. */
export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: readonly number[] }
  | { type: 'i32[]'; value: readonly number[] };

export interface GgufTensorInfo {
  name: string;
  /** ne[0] first: the innermost (contiguous) dimension, as ggml orders them. */
  dims: readonly number[];
  type: GgmlType;
}

/** Grows a buffer while little-endian values are appended; the header is small, so this stays simple. */
class ByteWriter {
  private buffer = Buffer.alloc(1 << 16);
  private length = 0;

  private reserve(bytes: number): number {
    if (this.length + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    const at = this.length;
    this.length += bytes;
    return at;
  }

  u8(value: number): void {
    this.buffer.writeUInt8(value, this.reserve(1));
  }
  u32(value: number): void {
    this.buffer.writeUInt32LE(value, this.reserve(4));
  }
  i32(value: number): void {
    this.buffer.writeInt32LE(value, this.reserve(4));
  }
  f32(value: number): void {
    this.buffer.writeFloatLE(value, this.reserve(4));
  }
  u64(value: number): void {
    this.buffer.writeBigUInt64LE(BigInt(value), this.reserve(8));
  }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    bytes.copy(this.buffer, this.reserve(bytes.length));
  }
  padTo(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment;
    this.buffer.fill(0, this.reserve(padding), this.length);
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function writeValue(out: ByteWriter, value: GgufValue): void {
  switch (value.type) {
    case 'u32':
      out.u32(GgufValueType.UINT32);
      out.u32(value.value);
      return;
    case 'i32':
      out.u32(GgufValueType.INT32);
      out.i32(value.value);
      return;
    case 'f32':
      out.u32(GgufValueType.FLOAT32);
      out.f32(value.value);
      return;
    case 'bool':
      out.u32(GgufValueType.BOOL);
      out.u8(value.value ? 1 : 0);
      return;
    case 'string':
      out.u32(GgufValueType.STRING);
      out.string(value.value);
      return;
    case 'string[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.STRING);
      out.u64(value.value.length);
      for (const item of value.value) out.string(item);
      return;
    case 'f32[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.FLOAT32);
      out.u64(value.value.length);
      for (const item of value.value) out.f32(item);
      return;
    case 'i32[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.INT32);
      out.u64(value.value.length);
      for (const item of value.value) out.i32(item);
      return;
  }
}

export function tensorByteSize(tensor: GgufTensorInfo): number {
  return tensor.dims.reduce((product, dim) => product * dim, 1) * GGML_TYPE_SIZE[tensor.type];
}

export function alignUp(offset: number, alignment = GGUF_ALIGNMENT): number {
  return Math.ceil(offset / alignment) * alignment;
}

/**
 * Everything before the tensor data: header, metadata, tensor infos with their data offsets, and the
 * padding up to the aligned start of the data section. Tensors follow in the given order.
 */
export function encodeGgufHeader(
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorInfo[],
): Buffer {
  const out = new ByteWriter();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  out.u64(metadata.length);
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0;
  for (const tensor of tensors) {
    out.string(tensor.name);
    out.u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(dim);
    out.u32(tensor.type);
    out.u64(offset);
    offset = alignUp(offset + tensorByteSize(tensor));
  }
  out.padTo(GGUF_ALIGNMENT);
  return out.bytes();
}
