/** What a model is built with (its own module so the loader and the model class both use it without a cycle). */
import type { EngineChoice } from "../engine/choice";
import type { TextTokenizer } from "../io/tokenizer";

export interface ModelOptions {
  /** Seed of the random initialisation (default 0). */
  seed?: number;
  /** Tokenizer for string input. */
  tokenizer?: TextTokenizer | null;
  /** Prepend the BOS token to string input (default: what the tokenizer's post-processor does, as in HF). */
  prependBos?: boolean;
  /** The engine for this model (default: the process-wide choice, see `initBackend({ engine })`). */
  engine?: EngineChoice;
  /** @internal The given weights live in TF.js's cpu storage (fromPretrained of a model too big for wasm). */
  weightsInJsMemory?: boolean;
}
