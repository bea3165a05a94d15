"""Write a tiny random Qwen2 checkpoint, with a locally trained tokenizer, for real vLLM on CPU.

Run it with an env's python (it needs numpy, safetensors and tokenizers; ``--verify`` also needs
transformers), never import it into the tool's own process for work: the heavy imports are inside
the functions. ::

    python -m pytest_flmigrate.tiny.qwen2_checkpoint OUT_DIR [--arch Qwen2ForCausalLM]
        [--model-type qwen2] [--seed 0] [--verify]
    python path/to/qwen2_checkpoint.py OUT_DIR ...      (no package import needed)

The model follows docs/cpu-vllm.md: hidden 128, 2 layers, 4 heads / 2 KV heads (head size
32, which vLLM 0.13.0's CPU attention accepts), vocab 2048, float32 safetensors. Weights come from
a counter-based generator (splitmix64 of the seed, tensor name and index), uniform in
nn.Linear-like bounds, so they are byte-identical for the same arguments on any numpy version and
machine. The tokenizer is a byte-level BPE trained here on a built-in corpus of English, Chinese,
code and maths, saved as tokenizer.json + tokenizer_config.json (with a ChatML chat template) so
that ``AutoTokenizer.from_pretrained(OUT_DIR)`` loads it. Every JSON file is written by this
module (no library version strings), so the same arguments give the same bytes.

Idempotent: a stamp file (flmigrate-checkpoint.json) written last records the arguments and the
sha256 of every file; when it matches, nothing is rewritten. ``--arch``/``--model-type`` let tests
make a checkpoint whose ``architectures`` names a migrated class.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__:
    from pytest_flmigrate import atomic
else:  # run as a script in an env without this package: the package's atomic.py, by its path
    import importlib.util

    _ATOMIC = importlib.util.spec_from_file_location("flmigrate_atomic", Path(__file__).parents[1] / "atomic.py")
    assert _ATOMIC is not None and _ATOMIC.loader is not None
    atomic = importlib.util.module_from_spec(_ATOMIC)
    _ATOMIC.loader.exec_module(atomic)

GENERATOR_VERSION = 1
STAMP = "flmigrate-checkpoint.json"

HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 256
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2
HEAD_DIM = HIDDEN_SIZE // NUM_HEADS  # 32
VOCAB_SIZE = 2048
MAX_POSITIONS = 2048

QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
ENDOFTEXT_ID, IM_START_ID, IM_END_ID = 0, 1, 2

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_ENGLISH = """\
The quick brown fox jumps over the lazy dog. A language model reads text as a sequence of tokens
and predicts the next token, one step at a time. Hello, how are you today? I am fine, thank you.
Please introduce yourself in a few sentences. What is the capital of France? Paris is the capital
of France, and Berlin is the capital of Germany. Tell me a short story about a robot who learns to
paint. Once upon a time, in a small village near the mountains, there lived an old clockmaker.
Summarize the following paragraph in one sentence. Translate this sentence into Chinese.
Explain the difference between a process and a thread. Write a haiku about the autumn moon.
Large language models are trained on large amounts of text. Inference servers batch requests,
cache keys and values, and stream the generated tokens back to the client. The weather is nice,
so we will walk to the park, read a book, and come back before dinner. Why is the sky blue?
Sunlight is scattered by the molecules of the air, and blue light is scattered more than red.
Describe the water cycle: evaporation, condensation, precipitation and collection.
Give me three tips for learning a new programming language quickly.
Yesterday my friend visited the museum of natural history and saw the skeleton of a dinosaur.
Good morning! Could you recommend a healthy breakfast, some exercise, and a good night's sleep?
The government announced a new policy on energy, education and public transport this week.
Music, art, history, science and mathematics are taught at the school on the other side of town.
Keep your answers short, accurate and polite; if you do not know, say that you are not sure.
Scientists measure temperature, pressure and humidity to forecast storms, floods and droughts.
The library opens at nine o'clock; children borrow picture books while parents read newspapers.
Engineers design bridges, tunnels and railways; doctors treat patients; farmers grow wheat and rice.
In the kitchen, chop the onions, boil the potatoes, fry the eggs and season everything with salt.
The committee reviewed the budget, approved the proposal and scheduled another meeting in spring.
Planets orbit the sun because gravity bends their paths; the moon reflects light from the sun.
Remember to back up important files, update your software regularly and choose strong passwords.
"""

_CHINESE = """\
你好,请介绍一下你自己。我是一个人工智能助手,可以回答问题、写作和翻译。今天天气很好,我们去公园散步吧。
中国的首都是北京,上海是中国最大的城市之一。请用一句话总结下面这段文字。机器学习是人工智能的一个分支。
大语言模型通过预测下一个词来生成文本。请写一首关于春天的短诗:春风吹绿了江南岸,桃花开满了山坡。
为什么天空是蓝色的?因为空气中的分子对蓝光的散射比红光更强。请解释进程和线程的区别。
从前有一座山,山上有一座庙,庙里有一个老和尚在给小和尚讲故事。学习编程需要耐心和大量的练习。
请把这句话翻译成英文。谢谢你的帮助!不客气,很高兴为你服务。数学是科学的语言,计算机让计算变得更快。
我的朋友昨天去了博物馆,看到了恐龙的化石。早上好!请推荐一份健康的早餐。音乐、美术、历史和科学都很有趣。
政府发布了关于能源、教育和公共交通的新政策。如果你不知道答案,请直接说不确定。
科学家测量温度、气压和湿度来预报暴雨、洪水和干旱。图书馆早上九点开门,孩子们借阅图画书。
工程师设计桥梁、隧道和铁路;医生治疗病人;农民种植小麦和水稻。厨房里切洋葱、煮土豆、炒鸡蛋。
委员会审查了预算,批准了提案,并安排在春天再开一次会议。行星围绕太阳运行,月亮反射太阳的光。
记得备份重要文件,定期更新软件,并选择安全的密码。北京、上海、广州和深圳都是现代化的大城市。
长城是世界上最著名的建筑之一。黄河和长江是中国最长的两条河流。熊猫喜欢吃竹子,生活在四川的山里。
"""

_CODE = '''\
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()


def quick_sort(values: list[int]) -> list[int]:
    if len(values) <= 1:
        return values
    pivot = values[len(values) // 2]
    left = [x for x in values if x < pivot]
    middle = [x for x in values if x == pivot]
    right = [x for x in values if x > pivot]
    return quick_sort(left) + middle + quick_sort(right)


import json
with open("config.json", "r", encoding="utf-8") as f:
    config = json.load(f)
print(f"hidden size: {config['hidden_size']}")

#include <stdio.h>
int main(void) {
    for (int i = 0; i < 10; i++) {
        printf("%d\\n", i * i);
    }
    return 0;
}

function add(a, b) {
  return a + b;
}
const items = [1, 2, 3].map((x) => x * 2);
console.log(JSON.stringify({ items }));

SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY name;
'''

_MATHS = """\
What is 2 + 2? 2 + 2 = 4. Solve for x: 3x + 5 = 20, so 3x = 15 and x = 5.
The area of a circle is pi * r^2; with r = 3 the area is about 28.27.
The derivative of x^2 is 2x, and the integral of 2x dx is x^2 + C.
If a train travels 120 km in 2 hours, its average speed is 60 km/h.
The sum of the angles of a triangle is 180 degrees. sqrt(16) = 4, 2^10 = 1024.
Let f(x) = x^3 - 2x + 1. Then f(2) = 8 - 4 + 1 = 5. The prime numbers below 30 are
2, 3, 5, 7, 11, 13, 17, 19, 23 and 29. 计算:12 × 12 = 144,100 ÷ 4 = 25。
"""


def corpus() -> list[str]:
    """The training corpus: fixed text plus generated arithmetic, code and Chinese lines."""
    lines: list[str] = []
    for block in (_ENGLISH, _CHINESE, _CODE, _MATHS):
        lines.extend(block.splitlines())
    for a in range(1, 40):
        for b in range(1, 13):
            lines.append(f"{a} + {b} = {a + b}; {a} * {b} = {a * b}; {a} - {b} = {a - b}")
    for i in range(64):
        lines.append(f"def function_{i}(value_{i}, count={i}):\n    return value_{i} * {i} + count")
        lines.append(f"for (let index = {i}; index < {i * 3 + 7}; index += {i % 5 + 1}) {{ total += index; }}")
    words = ("user", "model", "token", "cache", "layer", "weight", "config", "request", "server", "batch")
    for first in words:
        for second in words:
            if first != second:
                lines.append(f"{first}_{second} = get_{first}({second}_id)  # {first.title()}{second.title()}")
    zh_nums = "零一二三四五六七八九"
    for i in range(100):
        lines.append(f"第{zh_nums[i // 10]}{zh_nums[i % 10]}课:学生们学习了{i}个新的汉字和{i * 2}个词语。")
    return lines


# ---------------------------------------------------------------------------------------------
# weights


def _uniform(name: str, shape: tuple[int, ...], bound: float, seed: int):
    """Uniform(-bound, bound) float32 values from splitmix64 over (seed, name, index)."""
    import numpy as np

    count = 1
    for dim in shape:
        count *= dim
    key = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):
        z = np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    unit = (z >> np.uint64(11)).astype(np.float64) * (2.0**-53)  # exact, in [0, 1)
    values = (unit * 2.0 - 1.0) * bound  # one rounding: the same on every IEEE machine
    return values.astype(np.float32).reshape(shape)


def make_weights(seed: int) -> dict[str, Any]:
    """HF Qwen2 tensor names and shapes; norms are ones, the rest uniform (nn.Linear bounds)."""
    import numpy as np

    h, inter, hd = HIDDEN_SIZE, INTERMEDIATE_SIZE, HEAD_DIM
    q_out, kv_out = NUM_HEADS * hd, NUM_KV_HEADS * hd
    tensors: dict[str, Any] = {}

    def linear(name: str, out_f: int, in_f: int, bias: bool) -> None:
        bound = 1.0 / in_f**0.5
        tensors[f"{name}.weight"] = _uniform(f"{name}.weight", (out_f, in_f), bound, seed)
        if bias:
            tensors[f"{name}.bias"] = _uniform(f"{name}.bias", (out_f,), bound, seed)

    tensors["model.embed_tokens.weight"] = _uniform("model.embed_tokens.weight", (VOCAB_SIZE, h), 1.0, seed)
    for i in range(NUM_LAYERS):
        p = f"model.layers.{i}"
        tensors[f"{p}.input_layernorm.weight"] = np.ones((h,), dtype=np.float32)
        linear(f"{p}.self_attn.q_proj", q_out, h, True)
        linear(f"{p}.self_attn.k_proj", kv_out, h, True)
        linear(f"{p}.self_attn.v_proj", kv_out, h, True)
        linear(f"{p}.self_attn.o_proj", h, q_out, False)
        tensors[f"{p}.post_attention_layernorm.weight"] = np.ones((h,), dtype=np.float32)
        linear(f"{p}.mlp.gate_proj", inter, h, False)
        linear(f"{p}.mlp.up_proj", inter, h, False)
        linear(f"{p}.mlp.down_proj", h, inter, False)
    tensors["model.norm.weight"] = np.ones((h,), dtype=np.float32)
    linear("lm_head", VOCAB_SIZE, h, False)
    return tensors


def safetensors_bytes(seed: int) -> bytes:
    from safetensors.numpy import save

    return save(make_weights(seed), metadata={"format": "pt"})


# ---------------------------------------------------------------------------------------------
# tokenizer and JSON files


def tokenizer_json() -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    # Qwen2's own pipeline (NFC, its split regex, byte level): transformers 5 loads a qwen2
    # checkpoint's tokenizer as Qwen2Tokenizer and rebuilds exactly this around vocab and merges,
    # so transformers 4 and 5 (the pinned and the upstream env) tokenize alike only with it.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    size = tok.get_vocab_size(with_added_tokens=True)
    if size != VOCAB_SIZE:
        raise RuntimeError(f"trained tokenizer has {size} tokens, the model {VOCAB_SIZE}: enlarge corpus()")
    for index, token in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(token) != index:
            raise RuntimeError(f"special token {token} got id {tok.token_to_id(token)}, expected {index}")
    return tok.to_str(pretty=True)


def config_dict(arch: str, model_type: str) -> dict[str, Any]:
    return {
        "architectures": [arch],
        "model_type": model_type,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "bos_token_id": ENDOFTEXT_ID,
        "eos_token_id": IM_END_ID,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN_SIZE,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE_SIZE,
        "max_position_embeddings": MAX_POSITIONS,
        "max_window_layers": NUM_LAYERS,
        "num_attention_heads": NUM_HEADS,
        "num_hidden_layers": NUM_LAYERS,
        "num_key_value_heads": NUM_KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB_SIZE,
    }


def tokenizer_config_dict() -> dict[str, Any]:
    added = {
        str(index): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for index, token in enumerate(SPECIAL_TOKENS)
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": MAX_POSITIONS,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


def special_tokens_map_dict() -> dict[str, Any]:
    return {
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
    }


def generation_config_dict() -> dict[str, Any]:
    return {
        "bos_token_id": ENDOFTEXT_ID,
        "eos_token_id": [IM_END_ID, ENDOFTEXT_ID],
        "pad_token_id": ENDOFTEXT_ID,
    }


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def tokenizer_files() -> dict[str, bytes]:
    """The tokenizer's files and the generation config (its special ids), by name: shared by
    this checkpoint and the synthesized tiny models (synthesize.py)."""
    return {
        "generation_config.json": _json_bytes(generation_config_dict()),
        "special_tokens_map.json": _json_bytes(special_tokens_map_dict()),
        "tokenizer.json": tokenizer_json().encode("utf-8") + b"\n",
        "tokenizer_config.json": _json_bytes(tokenizer_config_dict()),
    }


def checkpoint_files(arch: str, model_type: str, seed: int) -> dict[str, bytes]:
    """Every file of the checkpoint, by name (the stamp excluded)."""
    return {
        "config.json": _json_bytes(config_dict(arch, model_type)),
        "model.safetensors": safetensors_bytes(seed),
        **tokenizer_files(),
    }


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _args_record(arch: str, model_type: str, seed: int) -> dict[str, Any]:
    return {"arch": arch, "model_type": model_type, "seed": seed, "generator_version": GENERATOR_VERSION}


def is_complete(out_dir: Path, arch: str, model_type: str, seed: int) -> bool:
    """True when the stamp matches these arguments and every file it lists is unchanged."""
    try:
        stamp = json.loads((out_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("args") != _args_record(arch, model_type, seed):
        return False
    files = stamp.get("files")
    if not isinstance(files, dict) or not files:
        return False
    return all(_sha256(out_dir / name) == digest for name, digest in files.items())


def write_checkpoint(out_dir: Path, arch: str = "Qwen2ForCausalLM", model_type: str = "qwen2", seed: int = 0) -> bool:
    """Write the checkpoint into ``out_dir``; False when it was already complete (nothing done)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_complete(out_dir, arch, model_type, seed):
        return False
    stamp_path = out_dir / STAMP
    if stamp_path.exists():
        stamp_path.unlink()
    files = checkpoint_files(arch, model_type, seed)
    for name, data in files.items():
        atomic.write(out_dir / name, data)
    stamp = {
        "args": _args_record(arch, model_type, seed),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    atomic.write(stamp_path, _json_bytes(stamp))
    return True


def verify(out_dir: Path, model_type: str) -> str:
    """Load the tokenizer (and, for qwen2, the config) with transformers; one summary line."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out_dir))
    if len(tok) != VOCAB_SIZE:
        raise RuntimeError(f"AutoTokenizer sees {len(tok)} tokens, expected {VOCAB_SIZE}")
    messages = [{"role": "user", "content": "Hello! 你好 print(1 + 2)"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    expected = "<|im_start|>user\nHello! 你好 print(1 + 2)<|im_end|>\n<|im_start|>assistant\n"
    if text != expected:
        raise RuntimeError(f"chat template gave {text!r}, expected {expected!r}")
    ids = tok(text)["input_ids"]
    if ids[0] != IM_START_ID or tok.decode(ids) != text:
        raise RuntimeError(f"tokenizer round trip failed: {ids}")
    if model_type == "qwen2":
        cfg = AutoConfig.from_pretrained(str(out_dir))
        if (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) != (HIDDEN_SIZE, NUM_LAYERS, VOCAB_SIZE):
            raise RuntimeError(f"AutoConfig read {cfg}")
    return f"verified: {len(tok)} tokens, chat prompt of {len(ids)} tokens"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qwen2_checkpoint", description="Write a tiny random Qwen2 checkpoint (docs/cpu-vllm.md)."
    )
    parser.add_argument("out_dir", type=Path, help="output folder (created)")
    parser.add_argument("--arch", default="Qwen2ForCausalLM", help="config.json architectures[0]")
    parser.add_argument("--model-type", default="qwen2", help="config.json model_type")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--verify", action="store_true", help="load it with transformers afterwards")
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir.absolute()
    wrote = write_checkpoint(out_dir, args.arch, args.model_type, args.seed)
    print(f"{out_dir}: {'written' if wrote else 'already complete'}")
    if args.verify:
        print(verify(out_dir, args.model_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
