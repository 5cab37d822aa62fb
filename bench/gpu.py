"""GPU paths at the hardware's pace: LoRA training (packed and padded) and guard scoring (one pass
and generation) on random-weight Llama models of the published shapes, each figure beside its
bound (issue 14's goals on an H200).

    python bench/gpu.py                  # Llama-3.2-1B and Llama-3.1-8B shapes, on a GPU
    python bench/gpu.py --shapes 1b      # one shape
    .venv/bin/python bench/gpu.py --tiny # tiny shapes on a CPU: checks that the script runs

Prompts are NemoGuard-shaped (the instruction, a conversation, the JSON opening) of about 567
tokens on average (300 to 900), as measured on real XSTest completions. Training runs the
project's ``train_lora`` (rank 16, every projection, bf16 on a GPU) for ``--steps`` steps, packed
and then padded (length-grouped); tokens/s counts real tokens in steady state (after
``--warmup`` steps), the FLOP share takes 4 FLOP per parameter per real token (forward 2, the
backward pass's input gradients 2; the frozen base needs no weight gradients) against
``--peak-tflops``. Scoring reads the label in one forward pass (``guards.one_pass``, no category
generation: labels only) and, for comparison, generates the answer as the generation path does
(batches of 8, up to 64 tokens): random weights never write EOS, so generation runs to its limit.
Peak memory is torch's (GPU) or the process's RSS (CPU).
"""

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 4, "vocab_size": 2048, "tie_word_embeddings": False},
}  # fmt: skip
# Goals on an H200 (issue 14): training 8B >= 40 % of peak on real tokens; scoring prompts/s.
TRAINING_SHARE_GOAL = {"8b": 0.40, "1b": None, "tiny": None}
SCORING_GOAL = {"1b": 300.0, "8b": 40.0, "tiny": None}
WORDS = ("the user asks how to make a cake and the agent answers with steps flour sugar eggs bake oven minutes "
         "please explain why this is unsafe safe policy category violence weapon help cannot").split()  # fmt: skip


def setup_django(folder: Path) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def build_model(shape: str, folder: Path, device: str):
    """A random-weight Llama of the shape and a byte-level BPE tokenizer trained here (its ids
    fit the model's vocabulary; prompt lengths are counted in its tokens)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tests.tiny_models import CHAT_TEMPLATE

    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tokenizer.train_from_iterator([" ".join(WORDS)] * 10 + ['{"User Safety": "unsafe", "safe"}'] * 10, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", eos_token="<|end|>",
                                      bos_token="<|end|>")  # fmt: skip
    wrapped.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, pad_token_id=wrapped.pad_token_id,
                         eos_token_id=wrapped.eos_token_id, bos_token_id=wrapped.bos_token_id)  # fmt: skip
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(folder)
    wrapped.save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return wrapped, parameters


def conversations(count: int, mean_tokens: int, seed: int = 0) -> list[str]:
    """User turns of ``mean_tokens`` words on average (half to 1.6 times), NemoGuard-shaped."""
    rng = random.Random(seed)
    turns = []
    for _ in range(count):
        words = rng.randint(mean_tokens // 2, mean_tokens * 8 // 5)
        body = " ".join(rng.choice(WORDS) for _ in range(words))
        turns.append(f"Task: judge the conversation.\n\nUser: {body}\n\nOutput JSON: ")
    return turns


def peak_memory_gb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def padding_share(lengths: list[int], batch: int) -> float:
    """Padding in batches of ``batch`` examples in the order given (each padded to its longest)."""
    real = sum(lengths)
    padded = sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch))
    return 1 - real / padded


def bench_training(shape: str, folder: Path, device: str, parameters: int, args) -> list[dict]:
    import torch
    from transformers import AutoTokenizer

    from training.trainers.lora import LoraSettings, encode_example, pack_examples, train_lora

    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = [
        {"messages": [{"role": "user", "content": text}], "completion": '{"User Safety": "unsafe"}'}
        for text in conversations(args.examples, args.mean_tokens)
    ]
    encoded = [encode_example(tokenizer, e["messages"], e["completion"], args.max_length) for e in examples]
    encoded = [e for e in encoded if e is not None]
    results = []
    for packing in (True, False):
        stamps: list[tuple[int, float]] = []

        def report(step, total, loss, eta, stamps=stamps):
            stamps.append((step, time.perf_counter()))
            return False

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        settings = LoraSettings(rank=16, alpha=32, dropout=0.0, max_steps=args.steps, save_steps=10**6,
                                max_length=args.max_length, packing=packing, batch_size=args.batch_size,
                                gradient_checkpointing=args.checkpointing)  # fmt: skip
        with tempfile.TemporaryDirectory() as output:
            metrics = train_lora(str(folder), examples, [], Path(output), settings, report)
        batch = metrics["batch_size"]
        if packing:
            rows = pack_examples(encoded, args.max_length)
            lengths = [len(r["input_ids"]) for r in rows]
        else:
            lengths = sorted(len(e["input_ids"]) for e in encoded)  # length-grouped batches
        steps_per_epoch = -(-len(lengths) // batch)
        real_per_step = sum(lengths) / steps_per_epoch
        measured = [s for s in stamps if s[0] > args.warmup] or stamps
        first = next((s for s in stamps if s[0] == measured[0][0] - 1), None)
        start_step, start_time = first if first else (0, stamps[0][1])
        seconds = measured[-1][1] - start_time
        tokens_per_second = real_per_step * (measured[-1][0] - start_step) / seconds if seconds > 0 else float("nan")
        flop_share = 4 * parameters * tokens_per_second / (args.peak_tflops * 1e12) if args.peak_tflops else None
        results.append(
            {
                "shape": shape,
                "work": "train LoRA r16",
                "packing": packing,
                "micro_batch": batch,
                "tokens_per_s": round(tokens_per_second),
                "peak_share": flop_share,
                "padding_share": round(padding_share(lengths, batch), 3),
                "peak_memory_gb": round(peak_memory_gb(device), 2),
                "liger": metrics["liger"],
                "goal_peak_share": TRAINING_SHARE_GOAL[shape],
            }
        )
    return results


def bench_scoring(shape: str, folder: Path, device: str, args) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from guards.formats.nemoguard import NEMOGUARD_OPENING
    from guards.one_pass import OnePassScorer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    turns = conversations(args.prompts, args.mean_tokens, seed=1)
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": turn}], add_generation_prompt=True,
                                      return_dict=True)["input_ids"]
        for turn in turns
    ]  # fmt: skip
    scorer = OnePassScorer(model, tokenizer, device=device, batch_size=args.score_batch or None)
    scorer.score(prompts[: min(8, len(prompts))], NEMOGUARD_OPENING, max_new_tokens=0)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    scorer.score(prompts, NEMOGUARD_OPENING, max_new_tokens=0)  # labels only: no category generation
    if device == "cuda":
        torch.cuda.synchronize()
    one_pass = len(prompts) / (time.perf_counter() - start)
    one_pass_memory = peak_memory_gb(device)
    generated = prompts[: args.generation_prompts]
    texts = [tokenizer.decode(p) for p in generated]
    start = time.perf_counter()
    for begin in range(0, len(texts), 8):  # the generation path: batches of 8, greedy, up to 64 tokens
        batch = tokenizer(texts[begin : begin + 8], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            model.generate(**batch.to(device), max_new_tokens=64, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    if device == "cuda":
        torch.cuda.synchronize()
    generation = len(texts) / (time.perf_counter() - start)
    mean = sum(len(p) for p in prompts) / len(prompts)
    return [
        {"shape": shape, "work": "score (one pass, labels)", "prompts_per_s": round(one_pass, 1),
         "mean_prompt_tokens": round(mean), "peak_memory_gb": round(one_pass_memory, 2), "goal": SCORING_GOAL[shape]},
        {"shape": shape, "work": "score (generation, 64 tokens, batch 8)", "prompts_per_s": round(generation, 2),
         "mean_prompt_tokens": round(mean), "goal": SCORING_GOAL[shape],
         "note": "random weights never write EOS: every answer runs to 64 tokens"},
    ]  # fmt: skip


def beside_bound(row: dict) -> str:
    if "tokens_per_s" in row:
        share = f"{row['peak_share']:.0%} of peak" if row["peak_share"] is not None else "peak n/a"
        goal = f"goal >= {row['goal_peak_share']:.0%}" if row["goal_peak_share"] else "no goal set"
        kind = "packed" if row["packing"] else "padded"
        return (
            f"{row['shape']:>4} train {kind} (micro-batch {row['micro_batch']}): {row['tokens_per_s']} tokens/s, "
            f"{share} ({goal}), padding {row['padding_share']:.0%}, peak {row['peak_memory_gb']} GB"
            + (", Liger" if row["liger"] else "")
        )
    goal = f"goal >= {row['goal']:g} prompts/s" if row["goal"] else "no goal set"
    return (
        f"{row['shape']:>4} {row['work']}: {row['prompts_per_s']} prompts/s ({goal}), "
        f"{row['mean_prompt_tokens']} tokens a prompt" + (f"; {row['note']}" if row.get("note") else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and sizes (a CPU check of the script)")
    parser.add_argument("--shapes", default="1b,8b")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--mean-tokens", type=int, default=567)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=0, help="0: measured by a probe row (training.trainers.lora)")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--generation-prompts", type=int, default=32)
    parser.add_argument("--score-batch", type=int, default=0, help="0: from free memory")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H200: 989)")
    parser.add_argument("--skip", default="", help="train,score: parts to leave out")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.tiny:
        args.shapes, args.steps, args.warmup, args.examples, args.mean_tokens = "tiny", 4, 1, 24, 60
        args.max_length, args.prompts, args.generation_prompts, args.peak_tflops = 256, 16, 8, 0.0
    elif device != "cuda":
        parser.error("no GPU here: run with --tiny to check the script on a CPU")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp))
        for shape in args.shapes.split(","):
            folder = Path(tmp) / shape
            _, parameters = build_model(shape, folder, device)
            print(f"{shape}: {parameters / 1e9:.2f} B parameters on {device}", flush=True)
            if "train" not in args.skip:
                for row in bench_training(shape, folder, device, parameters, args):
                    rows.append(row)
                    print(beside_bound(row), flush=True)
            if "score" not in args.skip:
                for row in bench_scoring(shape, folder, device, args):
                    rows.append(row)
                    print(beside_bound(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
