/**
 * Token strings made readable for axis labels and hover text.
 *
 * Tokenizers store whitespace in private spellings: GPT-2's byte-level BPE maps every byte to a printable
 * character (space → `Ġ`, newline → `Ċ`, tab → `ĉ`, the bytes of "é" → `Ã©`), sentencepiece writes a space as
 * `▁`. A label that shows "Ġcat", or an invisible " cat", hides what the model saw. We decode both spellings
 * and then draw whitespace with visible glyphs (all present in DejaVu Sans, the font the static pictures use).
 */

/** Visible stand-ins for whitespace. */
export const VISIBLE = {
  space: "␣",
  newline: "↵",
  tab: "⇥",
  empty: "∅",
  ellipsis: "…",
} as const;

/**
 * GPT-2's byte → unicode table (bytes_to_unicode in openai/gpt-2 encoder.py): printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100 onwards in byte order. We need the inverse.
 */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (printable(b)) map.set(String.fromCharCode(b), b);
    else map.set(String.fromCharCode(256 + next++), b);
  }
  return map;
})();

/** Decodes UTF-8 bytes; a byte that is not part of a valid sequence becomes `<0xNN>` (sentencepiece's spelling). */
function decodeUtf8Lenient(bytes: number[]): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    const seq = bytes.slice(i, i + len);
    const complete = len > 0 && seq.length === len && seq.slice(1).every((c) => (c & 0xc0) === 0x80);
    const text = complete ? new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(seq)) : "";
    if (complete && !text.includes("\uFFFD")) {
      out += text;
      i += len;
    } else {
      out += `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      i += 1;
    }
  }
  return out;
}

/**
 * Undoes GPT-2 byte-level spelling when the token is written in that alphabet and uses it visibly (contains
 * one of the remapped characters such as `Ġ`, or decodes to different valid text such as `Ã©` → `é`).
 * A plain token ("cat", or a sentencepiece "é") is returned unchanged.
 */
function decodeByteLevel(tok: string): string {
  const chars = Array.from(tok);
  if (!chars.every((c) => BYTE_OF_CHAR.has(c))) return tok;
  const remapped = chars.some((c) => c.charCodeAt(0) >= 256);
  const bytes = chars.map((c) => BYTE_OF_CHAR.get(c) as number);
  const decoded = decodeUtf8Lenient(bytes);
  if (remapped) return decoded;
  // Only Latin-1 letters: decode only when the bytes form valid multi-byte UTF-8 (mojibake like "Ã©").
  return decoded !== tok && !decoded.includes("<0x") ? decoded : tok;
}

/** Characters that would be invisible or break a label: shown as `<U+XXXX>`. */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00a0\u00ad\u115f\u1160\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]/gu;

/**
 * Makes a token readable and its whitespace visible: `Ġ` / `▁` / " " → `␣`, newline (`Ċ`) → `↵`, tab (`ĉ`) →
 * `⇥`, other control or zero-width characters → `<U+XXXX>`, GPT-2 byte spellings decoded (`Ã©` → `é`, a split
 * multi-byte character → `<0xF0>`), the empty string → `∅`.
 *
 * @param tok the token as the tokenizer returns it
 * @param maxLength longest result in characters (default: no limit); longer ones end in `…`
 */
export function formatToken(tok: string, maxLength = Infinity): string {
  if (typeof tok !== "string") return String(tok);
  let s = decodeByteLevel(tok).replace(/\u2581/g, " ");
  s = s
    .replace(/\r\n|\n/g, VISIBLE.newline)
    .replace(/\t/g, VISIBLE.tab)
    .replace(/ /g, VISIBLE.space)
    .replace(INVISIBLE, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}>`);
  return truncate(s.length === 0 ? VISIBLE.empty : s, maxLength);
}

/** Cuts text to at most `maxLength` characters (code points), ending in `…` when cut. */
export function truncate(s: string, maxLength: number): string {
  const chars = Array.from(s);
  if (chars.length <= maxLength) return s;
  return chars.slice(0, Math.max(1, maxLength - 1)).join("") + VISIBLE.ellipsis;
}

/**
 * Labels for a sequence of tokens that are all distinct, because charts key categories by label and would
 * merge the two "the" of "the cat sat on the mat". Repeats get zero-width-space suffixes: they look the same,
 * but stay separate categories. formatToken never outputs U+200B itself (it is shown as `<U+200B>`), so the
 * suffix cannot collide with a real token.
 */
export function uniqueLabels(labels: string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((label) => {
    const n = seen.get(label) ?? 0;
    seen.set(label, n + 1);
    return n === 0 ? label : label + "\u200b".repeat(n);
  });
}

/** Escapes text for places that interpret HTML (HTML attributes and Plotly's pseudo-HTML labels). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
