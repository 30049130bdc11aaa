/**
 * arrakis-ts: mechanistic interpretability of transformer language models in TypeScript.
 * The published API; everything else is internal.
 */
import * as tf from "@tensorflow/tfjs";

export { tf };
export { initBackend, backend, wasmThreads, type InitOptions } from "./backend";
export { backendReport, engineReport, engineName, engineMemoryLimit, type EngineChoice } from "./engine/engine";
export type { EngineName } from "./engine/types";
export { ArrakisError } from "./errors";
export { HookedAutoConfig, type HookedAutoConfigFields } from "./model/config";
export { HookedAutoModel, type ModelOptions, type RunWithCacheOptions } from "./model/hooked-model";
export { embeddedModelDir } from "./model/load";
export { ActivationCache } from "./model/cache";
export type { HookFn, HookContext, HookSpec, HookTarget, HookHandle, HookPointInfo } from "./model/hooks";
export type { ModelDims, FamilyName, RopeScaling } from "./model/types";
export { modelSize, checkModelFits, memoryLimit, type ModelSize } from "./model/size";
export type { ModelInput } from "./model/input";
export { ARRAKIS_NAMES, implementedFamilies } from "./model/adapters";
export { TextTokenizer } from "./io/tokenizer";
export { readSafetensors, writeSafetensors, encodeSafetensors, SafetensorsFile } from "./io/safetensors";
export * from "./tools";
// Named in the "library gone" note of Plotly outputs; also on the kernel's `display`.
export { resetPlotlyLibrary } from "./display/plotly";
