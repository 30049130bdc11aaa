/**
 * tslab's converters (TypeScript type-check and transpile of each cell), wrapped for this kernel:
 *  - the JavaScript of every cell goes through rewriteAwaits (coroutine.ts) so async code is
 *    interruptible, and a top-level `for await` is flagged as top-level await (tslab misses it);
 *  - a cell that type-checked but then threw (or was interrupted) keeps its declarations, as in IPython
 *    where the assignments a failing cell made before the exception persist. tslab's executor only adopts
 *    a cell's declarations after the cell succeeded, so in the notebook cell
 *    `const text = "..."; attention.attentionPatterns(text, 0, 0)` failing on its second line used to
 *    make `text` unknown to every later cell. Names declared after the failure point type-check later but
 *    hold `undefined`.
 */
import type * as TS from "@tslab/typescript-for-tslab";
import type { Converter } from "tslab/dist/converter";
import type { ConverterSet } from "tslab/dist/executor";
import { rewriteAwaits } from "./coroutine";
import { kernelLog } from "./log";

export interface KernelConverters {
  set: ConverterSet;
  /** The last converted cell failed at run time: later cells still see its declarations. */
  keepLastDeclarations(): void;
}

export function createConverters(ts: typeof TS): KernelConverters {
  const { createConverter } = require("tslab/dist/converter") as typeof import("tslab/dist/converter");
  let lastDecl: string | undefined;
  let carried: string | undefined;

  const wrap = (conv: Converter): Converter => ({
    ...conv,
    convert(prevDecl, src) {
      const r = conv.convert(carried ?? prevDecl, src);
      if (r.diagnostics.length > 0) return r; // the carried declarations wait for the next cell that compiles
      carried = undefined;
      lastDecl = r.declOutput;
      if (r.output) {
        try {
          const { output, topLevelAwait } = rewriteAwaits(ts, r.output);
          r.output = output;
          r.hasToplevelAwait ||= topLevelAwait;
        } catch (e) {
          kernelLog("await rewrite failed; the cell runs without soft interrupts:", e);
        }
      }
      return r;
    },
    inspect: (prevDecl, src, position) => conv.inspect(carried ?? prevDecl, src, position),
    complete: (prevDecl, src, position) => conv.complete(carried ?? prevDecl, src, position),
  });

  let node: Converter | undefined;
  let browser: Converter | undefined;
  const set: ConverterSet = {
    get node() {
      return (node ??= wrap(createConverter({ isJS: false, isBrowser: false })));
    },
    get browser() {
      return (browser ??= createConverter({ isJS: false, isBrowser: true }));
    },
    close() {
      node?.close();
      browser?.close();
    },
  };
  return {
    set,
    keepLastDeclarations() {
      if (lastDecl !== undefined) carried = lastDecl;
    },
  };
}
