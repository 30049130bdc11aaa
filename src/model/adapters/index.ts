/** The registry of architecture families: the only file that changes when a family is added. */
import { fail, show } from "../../errors";
import type { FamilyAdapter } from "./adapter";
import { gemma } from "./gemma";
import { gpt2 } from "./gpt2";
import { gptNeo } from "./gpt-neo";
import { gptNeox } from "./gpt-neox";
import { llama } from "./llama";
import { mistral } from "./mistral";
import { phi3 } from "./phi3";
import { qwen2 } from "./qwen2";
import { stablelm } from "./stablelm";

/** The Arrakis architecture names, in the order Arrakis lists them. */
export const ARRAKIS_NAMES = ["gpt2", "gpt-neo", "gpt-neox", "llama", "gemma", "phi3", "qwen2", "mistral", "stable-lm"] as const;

const ADAPTERS: FamilyAdapter[] = [gpt2, gptNeo, gptNeox, llama, gemma, phi3, qwen2, mistral, stablelm];

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
  if ((ARRAKIS_NAMES as readonly string[]).includes(k)) fail(`architecture ${show(name)} is known but not implemented yet; implemented: ${ADAPTERS.map((a) => a.family).join(", ")}`);
  fail(`unknown architecture ${show(name)}; expected one of ${ARRAKIS_NAMES.join(", ")} (or a Hugging Face model_type such as gpt_neox, stablelm)`);
}

export function implementedFamilies(): string[] {
  return ADAPTERS.map((a) => a.family);
}
