/**
 * The TensorFlow.js engine: runs the forward wiring of `src/model/forward.ts` as tf ops. It is the reference
 * (every family, every flag), the one that trains with gradients, and the fallback whenever the onnxruntime
 * engine cannot run a model.
 */
import * as tf from "@tensorflow/tfjs";
import { block, embed, type PointFn, unembed } from "../model/forward";
import type { Engine, EngineModel, RunRequest, Runner } from "./types";

export const tfjsEngine: Engine = {
  name: "tfjs",
  unsupported: () => null,
  runner: (model) => new TfjsRunner(model),
};

class TfjsRunner implements Runner {
  constructor(private readonly model: EngineModel) {}

  /** Embeddings, one tidy per block (the wasm heap never shrinks, so only one block's intermediates live), unembedding. */
  run(req: RunRequest): tf.Tensor3D {
    const { cfg: c, params } = this.model;
    const point: PointFn = (name, layer, x) => req.point(name, layer, x);
    let resid = tf.tidy(() => embed(c, params, req.rows, point));
    try {
      for (let l = 0; l < c.nLayers; l++) {
        const next = tf.tidy(() => block(c, params.layers[l], l, resid, point));
        resid.dispose();
        resid = next;
      }
      const final = resid;
      return tf.tidy(() => unembed(c, params, final, point));
    } finally {
      resid.dispose();
    }
  }

  dispose(): void {}
}
