/**
 * The process-wide engine choice: `initBackend({ engine })`, else `ARRAKIS_ENGINE` (`ort` | `tfjs` | `auto`),
 * else automatic. A leaf module (errors only), so the TF.js backend layer can record the option without
 * importing the engines, which sit above it.
 */
import { fail, show } from "../errors";

export type EngineChoice = "ort" | "tfjs" | "auto";
const CHOICES: EngineChoice[] = ["ort", "tfjs", "auto"];

let preference: { choice: EngineChoice; from: string } | null = null;

/** Validates an engine option (a model's or initBackend's). */
export function checkEngineChoice(choice: unknown): EngineChoice | undefined {
  if (choice !== undefined && !CHOICES.includes(choice as EngineChoice)) fail(`engine must be one of ${CHOICES.join(", ")}, got ${show(choice)}`);
  return choice as EngineChoice | undefined;
}

/** Sets the engine choice (initBackend's `engine` option); later models use it. */
export function setEnginePreference(choice: EngineChoice | undefined, from = "initBackend({ engine })"): void {
  const c = checkEngineChoice(choice);
  if (c === undefined) return;
  preference = { choice: c, from: from.replace("{ engine }", `{ engine: "${c}" }`) };
}

/** The choice in force and where it came from. */
export function wantedEngine(): { choice: EngineChoice; from: string } {
  if (preference) return preference;
  const env = process.env.ARRAKIS_ENGINE?.trim();
  if (env) {
    if (!CHOICES.includes(env as EngineChoice)) fail(`ARRAKIS_ENGINE=${show(env)} is not an engine; expected one of ${CHOICES.join(", ")}`);
    return { choice: env as EngineChoice, from: `ARRAKIS_ENGINE=${env}` };
  }
  return { choice: "auto", from: "automatic" };
}
