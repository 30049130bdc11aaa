/** The registry of architecture families: the only file besides the family's own that changes when one is added. */
import { fail, show } from "../../errors";
import type { FamilyAdapter } from "./adapter";
import { gemma } from "./gemma";
import { gemma2 } from "./gemma2";
import { gemma3 } from "./gemma3";
import { gpt2 } from "./gpt2";
import { gptNeo } from "./gpt-neo";
import { gptNeox } from "./gpt-neox";
import { llama } from "./llama";
import { mistral } from "./mistral";
import { olmo } from "./olmo";
import { olmo2 } from "./olmo2";
import { phi } from "./phi";
import { phi3 } from "./phi3";
import { qwen2 } from "./qwen2";
import { qwen3 } from "./qwen3";
import { stablelm } from "./stablelm";

const REGISTRY = [
  gpt2, gptNeo, gptNeox, llama, gemma, gemma2, gemma3, phi, phi3, qwen2, qwen3, mistral, stablelm, olmo, olmo2,
] as const;
const ADAPTERS: readonly FamilyAdapter[] = REGISTRY;

/** The Arrakis family names, derived from the registered adapters ("gpt2" | "gpt-neo" | … | "olmo2"). */
export type FamilyName = (typeof REGISTRY)[number]["family"];

/** The Arrakis architecture names, in the order Arrakis lists them (one per registered adapter). */
export const ARRAKIS_NAMES: readonly FamilyName[] = REGISTRY.map((a) => a.family);

/** Lower-cased, with `_` and `-` treated alike, so `gpt_neox`, `gpt-neox` and `GPT-NeoX` all match. */
function key(name: string): string {
  return name.toLowerCase().replace(/_/g, "-");
}

/** Finds the adapter for an Arrakis name, a Hugging Face `model_type` or an architecture class name. */
export function adapterFor(name: unknown): FamilyAdapter {
  if (typeof name !== "string" || !name) fail(`architecture name must be a non-empty string, got ${show(name)}; expected one of ${ARRAKIS_NAMES.join(", ")}`);
  const k = key(name);
  const found = ADAPTERS.find((a) => key(a.family) === k || a.aliases.some((x) => key(x) === k));
  if (found) return found;
  fail(`unknown architecture ${show(name)}; expected one of ${ARRAKIS_NAMES.join(", ")} (or a Hugging Face model_type such as gpt_neox, stablelm, gemma3_text)`);
}

export function implementedFamilies(): string[] {
  return ADAPTERS.map((a) => a.family);
}
