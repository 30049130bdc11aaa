/**
 * The onnxruntime engine's self-check: small random models of both kinds (learned positions, LayerNorm,
 * biases, gelu; rotary with partial rotation, RMSNorm with a weight offset, grouped-query attention, gated
 * MLP, a sliding window) run on both engines; the largest logit difference is returned. It guards the use of
 * onnxruntime-node's internal synchronous binding: an incompatible version fails here, not in a user's pass.
 */
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig } from "../model/config";
import { initParams } from "../model/init";
import type { ModelDims, ModelParams } from "../model/types";
import type { Engine, RunRequest } from "./types";

const MODELS: Record<string, unknown>[] = [
  { name: "gpt2", n_layer: 2, n_head: 4, n_embd: 32, vocab_size: 97, n_positions: 32 },
  { name: "gemma", hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, intermediate_size: 64, vocab_size: 97 },
  { name: "gpt-neox", hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 64, vocab_size: 97, rotary_pct: 0.5 },
  { name: "mistral", hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 1, intermediate_size: 64, vocab_size: 97, sliding_window: 3 },
];

function plainRequest(rows: number[][]): RunRequest {
  return { rows, hooksAt: () => undefined, caches: () => false, cache: null, record: () => {}, point: (_n, _l, x) => x };
}

export function selfCheck(candidate: Engine, reference: Engine): number {
  let worst = 0;
  const rows = [[3, 1, 4, 1, 5, 9, 2, 6], [5, 3, 5, 8, 9, 7, 9, 3]];
  for (const fields of MODELS) {
    const cfg = new HookedAutoConfig(fields).dims as ModelDims;
    const why = candidate.unsupported(cfg);
    if (why) throw new Error(`the self-check model ${String(fields.name)} is not supported: ${why}`);
    const params = tf.tidy(() => initParams({ ...cfg, initStd: 0.2 }, 11) as unknown as tf.TensorContainer) as unknown as ModelParams;
    const runners = [candidate.runner({ cfg, params }), reference.runner({ cfg, params })];
    try {
      const [a, b] = runners.map((r) => r.run(plainRequest(rows)));
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
      tf.dispose([a, b]);
      worst = Math.max(worst, Number.isNaN(d) ? Infinity : d);
    } finally {
      runners.forEach((r) => r.dispose());
      tf.dispose(params as unknown as tf.TensorContainer);
    }
  }
  return worst;
}
