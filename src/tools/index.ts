/** The tools: attention tools, head detectors and the experiment bench. */
export {
  AttentionTools,
  AttentionPattern,
  TopAttended,
  AblationComparison,
  HeadSweep,
  AblationHandle,
  MergeHandle,
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
export {
  BaseInterpretabilityBench,
  MIExperiment,
  ModelProfile,
  HypothesisTest,
  toRecordValue,
  type BenchTools,
  type ExperimentRecord,
  type ExperimentVersion,
  type HypothesisOptions,
  type ProfileComponent,
} from "./bench";
