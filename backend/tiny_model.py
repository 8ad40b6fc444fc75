"""Build a tiny random Llama, with its own byte-level BPE tokenizer and chat template, on disk.

No hub download: tests and the CPU benchmark serve it with vLLM. Heads are 64 wide because
vLLM's CPU attention kernels reject smaller ones. The build is seeded, so it is reproducible.

`probe.json` beside the weights holds a prompt whose greedy continuation is known: the lm_head
rows of EOS and of the token greedy decoding picks at step `eos_after` are swapped, so plain
greedy decoding of that prompt stops there with EOS, and `ignore_eos` can be seen to work.

`python -m backend.tiny_model DIR` writes one into DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PROBE_PROMPT = "The gateway sends every request to the model and"
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. A gateway routes requests to models. "
    "Hello world, this is a tiny model that writes random words for tests and benchmarks. "
    "Open source models run on vLLM behind the same API as the hosted providers. "
    "Tokens stream back to the client one chunk at a time, and usage is counted at the end. "
    "user assistant system say hello to the gateway please answer briefly thank you "
)


def build_tokenizer(vocab_size: int = 512) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator([_CORPUS] * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(vocab_size: int, eos_id: int, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, num_key_value_heads=1, head_dim=64,
        max_position_embeddings=2048, bos_token_id=1, eos_token_id=eos_id, pad_token_id=3,
        tie_word_embeddings=False, torch_dtype="float32",
    )
    # A wider init than the default 0.02: greedy decoding gets clear winners, sampling stays varied.
    config.initializer_range = 0.2
    return LlamaForCausalLM(config).eval()


def _greedy(model: Any, ids: list[int], steps: int) -> tuple[list[int], list[float]]:
    """Greedy continuation and, per step, the gap between the best and second-best logit."""
    import torch

    out, margins = [], []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids + out])).logits[0, -1]
            top = torch.topk(logits, 2)
            out.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
    return out, margins


def plant_eos(model: Any, prompt_ids: list[int], eos_id: int) -> dict[str, Any]:
    """Swap lm_head rows so greedy decoding of the prompt emits EOS at a known step."""
    import torch

    greedy, margins = _greedy(model, prompt_ids, 16)
    for step in range(3, len(greedy)):
        token = greedy[step]
        if token != eos_id and token not in greedy[:step] and eos_id not in greedy[:step] \
                and margins[step] > 0.1:
            break
    else:
        raise RuntimeError("no step of the greedy probe is safe to end with EOS; change seed")
    weight = model.lm_head.weight
    with torch.no_grad():
        weight[[token, eos_id]] = weight[[eos_id, token]]
    return {"prompt": PROBE_PROMPT, "eos_after": step, "greedy_ids": greedy[:step]}


def build(directory: Path, seed: int = 0) -> Path:
    """Write config, weights, tokenizer, chat template and probe.json into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids("</s>")
    model = build_model(len(tokenizer), eos_id, seed)
    probe = plant_eos(model, tokenizer(PROBE_PROMPT)["input_ids"], eos_id)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    (directory / "probe.json").write_text(json.dumps(probe))
    return directory


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-llama")))
