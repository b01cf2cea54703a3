// Untrusted-file readers (safetensors, torch.save .pth) and the safetensors writer.
export * from './raw-tensor';
export { readSafetensors, writeSafetensors, MAX_HEADER_BYTES } from './safetensors';
export type { SafetensorsContents, ReadSafetensorsOptions } from './safetensors';
export { ZipReader, crc32 } from './zip';
export type { ZipEntry, ByteSource } from './zip';
export { unpickle, PyDict, PyGlobal, TorchStorageType, isPyDict, DEFAULT_UNPICKLE_LIMITS } from './pickle';
export type { UnpickleOptions, UnpickleLimits, TorchHooks, TensorRebuildArgs, TensorStub } from './pickle';
export { readPth, extractStateDict, readPthStateDict } from './pth';
export type { ReadPthOptions, ExtractStateDictOptions, ExtractedStateDict } from './pth';
export { saveStateDict, loadStateDictFile, readStateDictFile, rawToTensor, tensorToRaw } from './checkpoint';
export type { LoadStateDictFileOptions, LoadStateDictFileResult } from './checkpoint';
