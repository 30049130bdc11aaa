/**
 * The JSON files of the embedded model's Hugging Face directory: config.json (GPT2Config field names, as
 * `save_pretrained` writes them for transformers 4.43), tokenizer.json (a word-level `tokenizers` file) and
 * tokenizer_config.json.
 *
 * BOS policy: the model is trained with `<bos>` at position 0 of every sequence (it also serves as the
 * attention sink heads park on), so the tokenizer's post-processor prepends `<bos>` to every encoded text.
 * Token ids given directly to the model should start with `<bos>` (id 0) as well. GPT-2 style, `<bos>`
 * doubles as the eos token (`eos_token_id` = `bos_token_id` = 0); the model never saw an end of text.
 */
import { BOS_ID, SPECIAL_TOKENS, UNK_ID, VOCAB } from "./synthetic";
import { LAYER_NORM_EPS, TinyGpt2Shape } from "./tiny-gpt2";

export function gpt2ConfigJson(s: TinyGpt2Shape): Record<string, unknown> {
  return {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.0,
    bos_token_id: BOS_ID,
    embd_pdrop: 0.0,
    eos_token_id: BOS_ID,
    initializer_range: 0.02,
    layer_norm_epsilon: LAYER_NORM_EPS,
    model_type: "gpt2",
    n_embd: s.dModel,
    n_head: s.nHead,
    n_inner: s.dMlp,
    n_layer: s.nLayer,
    n_positions: s.nCtx,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.0,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: "cls_index",
    summary_use_proj: true,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    use_cache: true,
    vocab_size: s.vocabSize,
  };
}

/**
 * A `tokenizers` (Rust library, serialization version 1.0) word-level tokenizer: lowercase, split on
 * whitespace, look each word up (unknown → `<unk>`), then prepend `<bos>` (TemplateProcessing).
 */
export function tokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  VOCAB.forEach((w, i) => (vocab[w] = i));
  const bos = SPECIAL_TOKENS[BOS_ID];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: { type: "Lowercase" },
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [BOS_ID], tokens: [bos] } },
    },
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: SPECIAL_TOKENS[UNK_ID] },
  };
}

/**
 * tokenizer_config.json. `unk_token` matters beyond documentation: `@huggingface/tokenizers` (JS, 0.2) has no
 * WordLevel class and loads this model through its fallback ("Legacy") model, which takes the unknown-token
 * id from here, not from tokenizer.json.
 */
export function tokenizerConfigJson(s: TinyGpt2Shape): Record<string, unknown> {
  const added: Record<string, unknown> = {};
  SPECIAL_TOKENS.forEach((content, id) => {
    added[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    add_bos_token: true,
    add_prefix_space: false,
    added_tokens_decoder: added,
    bos_token: SPECIAL_TOKENS[BOS_ID],
    clean_up_tokenization_spaces: false,
    eos_token: SPECIAL_TOKENS[BOS_ID],
    model_max_length: s.nCtx,
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: SPECIAL_TOKENS[UNK_ID],
  };
}
