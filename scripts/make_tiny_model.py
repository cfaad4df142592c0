"""Write the tiny deterministic llama GGUF that unit tests run on: `python scripts/make_tiny_model.py OUT`.

The vocabulary is a real byte-level BPE (GPT-2 byte mapping, merges learned from the text below) so tokenizer,
grammar and detokenization code meets the same shapes as in a real model; the weights are random, so the text
it generates is noise. Every run writes the same bytes: fixed seed, fixed tie-breaking, no timestamps.
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections import Counter
from pathlib import Path

import gguf
import numpy as np

TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. A model reads a prompt and writes an answer, one token at a time.
The runtime runs the model on a small machine, and the answer is the text that the model writes for the user.
In the morning the team reads the report, and in the evening they write the summary of the day.
There is a name, a date and a number in the record; the script extracts them and returns them as JSON.
Please return the name of the city, the country and the population as a JSON object with these keys.
What is the weather like today? It is sunny and warm, with a light wind from the west.
The assistant answers the question in a short sentence, and then it stops.
{"name": "Alice", "age": 30, "city": "Paris", "tags": ["admin", "user"], "active": true}
{"name": "Bob", "age": 25, "city": "Berlin", "tags": [], "active": false, "email": null}
{"id": 1, "title": "The first item", "price": 9.99, "in_stock": true, "items": [1, 2, 3]}
{"id": 2, "title": "A second item", "price": 19.5, "in_stock": false, "items": [{"id": 3}]}
{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
{"type": "array", "items": {"type": "number"}, "required": ["name", "age"]}
{"role": "user", "content": "What is the capital of France?"}
{"role": "assistant", "content": "The capital of France is Paris."}
{"function": "get_weather", "arguments": {"city": "London", "unit": "celsius"}}
"""

# GPT-2's pre-tokenizer split, written for `re` (the text above is ASCII, so \p{L} and \p{N} reduce to these).
GPT2_PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")

WORD_MERGES = 200
# Merges learned on whole JSON lines: tokens such as `": "` or `", "` that span several JSON pieces. The
# tokenizer never produces them from text (its pre-tokenizer splits first), but a model may sample them,
# which is exactly what the grammar engine must handle.
CROSS_WORD_MERGES = 40

SPECIAL_TOKENS = ("<s>", "</s>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

CONTEXT_LENGTH = 512
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
SEED = 20240601


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, so every token is a plain string."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    )
    mapping = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


def _apply_merges(symbols: list[str], merges: list[tuple[str, str]]) -> list[str]:
    for left, right in merges:
        i = 0
        merged: list[str] = []
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                merged.append(left + right)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def learn_merges(words: Counter[str], merges: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """Learn `count` more BPE merges over `words` (already mapped to byte characters) after `merges`.

    Ties between equally frequent pairs go to the lexicographically smallest pair, so the result is fixed.
    """
    merges = list(merges)
    segmented = {word: _apply_merges(list(word), merges) for word in words}
    for _ in range(count):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in segmented.items():
            for pair in itertools.pairwise(symbols):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        segmented = {word: _apply_merges(symbols, [best]) for word, symbols in segmented.items()}
    return merges


def build_vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Tokens, their llama.cpp token types, and merges (as "left right" strings)."""
    to_char = byte_to_unicode()

    def mapped(text: str) -> str:
        return "".join(to_char[b] for b in text.encode("utf-8"))

    words = Counter(mapped(piece) for piece in GPT2_PRETOKENIZE.findall(TRAINING_TEXT))
    merges = learn_merges(words, [], WORD_MERGES)
    json_lines = Counter(mapped(line) for line in TRAINING_TEXT.splitlines() if line.startswith("{"))
    merges = learn_merges(json_lines, merges, CROSS_WORD_MERGES)

    tokens = [to_char[b] for b in range(256)]
    known = set(tokens)
    for left, right in merges:
        if left + right not in known:
            tokens.append(left + right)
            known.add(left + right)
    token_types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    tokens.extend(SPECIAL_TOKENS)
    token_types.extend([int(gguf.TokenType.CONTROL)] * len(SPECIAL_TOKENS))
    return tokens, token_types, [f"{left} {right}" for left, right in merges]


def _weights(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)


def write_tiny_model(path: Path) -> None:
    """Write the tiny model to `path` (same bytes on every call)."""
    tokens, token_types, merges = build_vocabulary()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD
    rng = np.random.default_rng(SEED)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("edge-runtime tiny llama")
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<s>"))
    writer.add_eos_token_id(tokens.index("</s>"))
    writer.add_eot_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    writer.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32))
    for layer in range(N_LAYER):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", _weights(rng, N_HEAD * head_dim, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_k.weight", _weights(rng, N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_v.weight", _weights(rng, N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_output.weight", _weights(rng, N_EMBD, N_HEAD * head_dim))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", _weights(rng, N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_up.weight", _weights(rng, N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_down.weight", _weights(rng, N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", _weights(rng, n_vocab, N_EMBD))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the GGUF file")
    args = parser.parse_args()
    write_tiny_model(args.out)


if __name__ == "__main__":
    main()
