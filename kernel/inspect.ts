/**
 * Where an inspect_request looks. People press Shift+Tab right after `(` or while typing a call's
 * arguments, to see what the call takes; the type checker only has something to say at a name. So, as
 * ipykernel does, a cursor inside a call's parentheses inspects the called function (the innermost call
 * wins), and anywhere else the cursor itself is inspected.
 */
import type * as TS from "@tslab/typescript-for-tslab";

/**
 * The offset (UTF-16) at the end of the callee's name when `cursor` sits between the parentheses of a call
 * or `new` expression in `code`, else undefined. An unclosed call (`f(a, `) counts up to the end of `code`.
 */
export function enclosingCallee(ts: typeof TS, code: string, cursor: number): number | undefined {
  const sf = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  let found: number | undefined;
  const visit = (node: TS.Node): void => {
    // A node's `end` stops before trailing blanks, where a cursor after `f(a, ` sits: count them in.
    if (node.getStart(sf) > cursor || afterTrivia(code, node.end) < cursor) return;
    if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && node.arguments) {
      const open = node.arguments.pos; // just after `(`
      const closed = node.end > open && code[node.end - 1] === ")";
      // Inside means up to just before `)`, or for an unclosed call up to the next code after it.
      const last = closed ? node.end - 1 : afterTrivia(code, node.end);
      if (cursor >= open && cursor <= last) found = node.expression.end;
    }
    ts.forEachChild(node, visit); // deeper calls are visited later and win
  };
  visit(sf);
  return found;
}

/** The offset of the first character after the blanks and comments at `pos`. */
function afterTrivia(code: string, pos: number): number {
  const m = /^(?:\s|\/\/[^\n]*|\/\*[\s\S]*?\*\/)*/.exec(code.slice(pos));
  return pos + (m ? m[0].length : 0);
}

/** Jupyter counts cursor_pos in Unicode code points; JavaScript strings index UTF-16 units. */
export function codePointsToUtf16(code: string, cursorPos: number): number {
  let units = 0;
  let points = 0;
  for (const ch of code) {
    if (points >= cursorPos) break;
    units += ch.length;
    points++;
  }
  return units;
}
