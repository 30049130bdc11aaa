/** `ActivationCache`: activations recorded during one forward pass, owned by the cache until `dispose()`. */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";

export class ActivationCache {
  private readonly store = new Map<string, tf.Tensor>();
  private disposed = false;

  /** @internal Takes ownership of `t`. */
  set(name: string, t: tf.Tensor): void {
    this.store.get(name)?.dispose();
    this.store.set(name, t);
  }

  /** The activation recorded at a hook point (owned by the cache: do not dispose it yourself). */
  get(name: string): tf.Tensor {
    if (this.disposed) fail(`this ActivationCache was disposed; run runWithCache again to get ${show(name)}`);
    const t = this.store.get(name);
    if (!t) fail(`no activation ${show(name)} in the cache; it holds ${this.store.size ? this.names.slice(0, 6).join(", ") + (this.store.size > 6 ? ", …" : "") : "nothing"}`);
    return t;
  }

  has(name: string): boolean {
    return this.store.has(name);
  }

  get names(): string[] {
    return [...this.store.keys()];
  }

  /** Total bytes held (float32). */
  get bytes(): number {
    let n = 0;
    for (const t of this.store.values()) n += t.size * 4;
    return n;
  }

  dispose(): void {
    for (const t of this.store.values()) t.dispose();
    this.store.clear();
    this.disposed = true;
  }

  toString(): string {
    return `ActivationCache(${this.store.size} activations, ${(this.bytes / 1e6).toFixed(2)} MB)`;
  }
}
