// Plain, tensor-library-free description of an n-dimensional array as it
// comes out of a file: a dtype tag, a shape and a typed array in row-major
// (C) order. Shared by the safetensors and .pth readers.

/** Typed array used to hold each dtype. F16 and BF16 keep their raw bit patterns. */
export interface DTypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type DType = keyof DTypeArrays;

/** A discriminated union, so `if (t.dtype === 'F32')` narrows `t.data` to Float32Array. */
export type RawTensor = {
  [D in DType]: { dtype: D; shape: number[]; data: DTypeArrays[D] };
}[DType];

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value);
}

/** Runtime check used by callers that receive values from an unpickler. */
export function isRawTensor(value: unknown): value is RawTensor {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { dtype?: unknown; shape?: unknown; data?: unknown };
  return isDType(v.dtype) && Array.isArray(v.shape) && ArrayBuffer.isView(v.data);
}

/**
 * Number of elements of a shape, or throws if a dimension is not a
 * non-negative integer or the product leaves the exactly representable range.
 * `what` prefixes the error message (it should name the file and tensor).
 */
export function checkedNumel(shape: readonly unknown[], what: string): number {
  let numel = 1;
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw new Error(`${what}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
    }
    numel *= dim;
    if (!Number.isSafeInteger(numel)) {
      throw new Error(`${what}: shape ${JSON.stringify(shape)} has too many elements`);
    }
  }
  return numel;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies little-endian bytes into a freshly allocated, aligned typed array of
 * `dtype`. Copying (rather than viewing the file buffer) guarantees alignment
 * and that the tensor owns its memory. `bytes.length` must be numel * size.
 */
export function typedArrayFromLittleEndian<D extends DType>(dtype: D, bytes: Uint8Array): DTypeArrays[D] {
  const size = DTYPE_BYTES[dtype];
  if (bytes.length % size !== 0) {
    throw new Error(`byte length ${bytes.length} is not a multiple of the ${dtype} element size ${size}`);
  }
  const buffer = new ArrayBuffer(bytes.length);
  const copy = new Uint8Array(buffer);
  copy.set(bytes);
  if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(copy, size);
  return makeTypedArray(dtype, buffer);
}

/** Allocates a zero-filled typed array of `dtype` with `numel` elements. */
export function allocateTypedArray<D extends DType>(dtype: D, numel: number): DTypeArrays[D] {
  return makeTypedArray(dtype, new ArrayBuffer(numel * DTYPE_BYTES[dtype]));
}

function makeTypedArray<D extends DType>(dtype: D, buffer: ArrayBuffer): DTypeArrays[D] {
  const constructors: { [K in DType]: new (b: ArrayBuffer) => DTypeArrays[K] } = {
    F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array,
    I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array,
    U64: BigUint64Array, U32: Uint32Array, U16: Uint16Array, U8: Uint8Array,
    BOOL: Uint8Array,
  };
  return new constructors[dtype](buffer);
}

/** The bytes of a typed array in little-endian order (a view when the host is little-endian). */
export function littleEndianBytes(data: ArrayBufferView): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return view;
  const elementSize = (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const copy = Uint8Array.from(view);
  swapBytesInPlace(copy, elementSize);
  return copy;
}

/** Reverses the byte order of every `size`-byte element (big-endian hosts and big-endian files). */
export function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const tmp = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = tmp;
    }
  }
}

/** IEEE 754 binary16 bit pattern to a JS number (exact). */
export function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * Any numeric tensor's data as float32. F32 data is returned as is (no copy);
 * F16/BF16 are decoded from their bit patterns (exactly: both fit in float32);
 * integers and booleans are converted by value (I64/U64 may lose precision
 * beyond 2^24, as they would in a float32 cast).
 */
export function toFloat32(raw: RawTensor): Float32Array {
  switch (raw.dtype) {
    case 'F32':
      return raw.data;
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place.
      const bits = new Uint32Array(raw.data.length);
      for (let i = 0; i < raw.data.length; i++) bits[i] = raw.data[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F16': {
      const out = new Float32Array(raw.data.length);
      for (let i = 0; i < raw.data.length; i++) out[i] = halfBitsToNumber(raw.data[i]);
      return out;
    }
    case 'I64':
    case 'U64': {
      const out = new Float32Array(raw.data.length);
      for (let i = 0; i < raw.data.length; i++) out[i] = Number(raw.data[i]);
      return out;
    }
    default:
      return Float32Array.from(raw.data);
  }
}
