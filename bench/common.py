"""Generated data shared by the benchmarks: rows shaped like the Aegis 2.0 release."""

import json
import random
from pathlib import Path

CATEGORIES = [
    "Violence",
    "Criminal Planning/Confessions",
    "Hate/Identity Hate",
    "PII/Privacy",
    "Harassment",
    "Fraud/Deception",
]
WORDS = "the of to and a in is it you that he was for on are with as I his they be at one have this from".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def generate(path: Path, size: int) -> None:
    """Rows shaped like the Aegis 2.0 release: ~40-word prompts, ~120-word responses."""
    rng = random.Random(size)
    with path.open("w", encoding="utf-8") as stream:
        for i in range(size):
            unsafe = rng.random() < 0.45
            has_response = rng.random() < 0.7
            row = {
                "id": f"{i:08x}{rng.getrandbits(64):016x}",
                "prompt": f"[{i}] " + text(rng, rng.randint(10, 70)),
                "response": text(rng, rng.randint(30, 200)) if has_response else None,
                "prompt_label": "unsafe" if unsafe else "safe",
                "response_label": (rng.choice(["safe", "unsafe"]) if has_response else None),
                "prompt_label_source": "human",
                "response_label_source": (rng.choice(["human", "llm_jury"]) if has_response else None),
                "violated_categories": ", ".join(rng.sample(CATEGORIES, rng.randint(1, 2))) if unsafe else "",
                "reconstruction_id_if_redacted": None,
            }
            stream.write(json.dumps(row) + "\n")


def generate_unlabelled(path: Path, size: int) -> None:
    """Dialogues with no labels (generic JSONL), for annotators to label."""
    rng = random.Random(size)
    with path.open("w", encoding="utf-8") as stream:
        for i in range(size):
            row = {"prompt": f"[{i}] " + text(rng, rng.randint(10, 70))}
            if rng.random() < 0.7:
                row["response"] = text(rng, rng.randint(30, 200))
            stream.write(json.dumps(row) + "\n")
