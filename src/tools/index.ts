/** The tools: attention tools, head detectors and the experiment bench. */
export {
  AttentionTools,
  AttentionPattern,
  AttentionView,
  PatchingResult,
  LogitAttribution,
  LogitLens,
  type PatchingMetric,
  type PatchingOptions,
  type LogitComponent,
  type ComponentKind,
  type AttributionOptions,
  type LensEntry,
  type LogitLensOptions,
  TopAttended,
  AblationComparison,
  HeadSweep,
  AblationHandle,
  MergeHandle,
  type MergeMode,
  type MergeOptions,
  type MergeSecond,
  type AblationMode,
  type AblateOptions,
  type ToolHandle,
  type AttendedKey,
  type QueryTopKeys,
  type LogitChange,
  type SweepMetric,
  type SweepOptions,
  type ComparisonOptions,
} from "./attention";
export { HeadScores, detectHeads, detectionTargets, repeatedRandomTokens, DETECTOR_KINDS, type DetectorKind, type DetectorOptions } from "./detectors";
export { BaseInterpretabilityBench, MIExperiment, type BenchTools, type ExperimentRecord, type ExperimentVersion } from "./experiment";
export { ExperimentVersionList, ExperimentRecordList, ExperimentVersionDetail } from "./experiment-views";
export { toRecordValue, INLINE_ELEMENTS, type TensorRef } from "./record-value";
export { ModelProfile, type ProfileComponent } from "./profile";
export { HypothesisTest, type HypothesisOptions } from "./hypothesis";
export { setCellSourceLookup, type CellSourceLookup } from "./cell-source";
