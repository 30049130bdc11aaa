/**
 * Text ↔ token ids through `@huggingface/tokenizers` (a maintained pure-JS implementation of Hugging Face's
 * tokenizer.json: BPE, WordPiece, Unigram, word-level), reading the same files Python's tokenizers reads.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { fail, show } from "../errors";

export class TextTokenizer {
  /** Whether Hugging Face's default encoding (add_special_tokens=True) starts with a BOS token. */
  readonly addsBos: boolean;

  private constructor(private readonly tok: Tokenizer, readonly source: string) {
    const plain = this.tok.encode("a", { add_special_tokens: false }).ids;
    const special = this.tok.encode("a", { add_special_tokens: true }).ids;
    this.addsBos = special.length > plain.length && special[0] !== plain[0];
  }

  /**
   * A tokenizer from the parsed contents of a `tokenizer.json` (and optionally `tokenizer_config.json`);
   * `source` names where they came from in error messages.
   */
  static fromJson(json: Record<string, unknown>, config: Record<string, unknown> = {}, source = "tokenizer.json"): TextTokenizer {
    try {
      return new TextTokenizer(new Tokenizer(json, config), source);
    } catch (e) {
      fail(`cannot load tokenizer ${show(source)}: ${(e as Error).message}`);
    }
  }

  /** Loads `tokenizer.json` (and `tokenizer_config.json` when present) from a model folder; null when absent. */
  static fromDir(dir: string): TextTokenizer | null {
    const file = path.join(dir, "tokenizer.json");
    if (!fs.existsSync(file)) return null;
    const json = readJson(file);
    const cfgFile = path.join(dir, "tokenizer_config.json");
    const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
    return TextTokenizer.fromJson(json, cfg, file);
  }

  /** Token ids of `text`, without special tokens (the model decides about BOS). */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    return ids.length ? this.tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  }

  /** The vocabulary string of one id (e.g. `Ġcat` for GPT-2's " cat"). */
  idToToken(id: number): string {
    return this.tok.id_to_token(id) ?? `<${id}>`;
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token) ?? undefined;
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(`cannot read ${show(file)}: ${(e as Error).message}`);
  }
}
