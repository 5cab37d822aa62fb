"""The in-process vLLM multi-LoRA runner (``VLLMLoraRunner``) on the CPU build of vLLM, in its own
environment: one engine serves the base model and several adapters; an adapter whose update is
zero answers as the base does, others answer with their own weights, and the runner parses."""

import json
import os
import subprocess
import sysconfig

import pytest

from tests.jury.vllm_server import CACHE_ROOT, ROOT, VENV_PYTHON, build_model, venv_problem

pytestmark = [pytest.mark.vllm]


def _adapter(base, folder, seed: int | None):
    """A LoRA adapter: zero update (``seed`` None, as peft starts one) or random B weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    zero = seed is None
    torch.manual_seed(seed or 0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                   task_type="CAUSAL_LM", init_lora_weights=True if zero else False),
    )  # fmt: skip
    if not zero:
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, 0.5)  # a strong update: its answers differ from the base's
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder)


def test_one_engine_serves_the_base_and_several_adapters(tmp_path):
    problem = venv_problem()
    assert problem is None, problem
    pytest.importorskip("peft")
    model = build_model(tmp_path / "tiny")
    adapters = {
        "zero": _adapter(model, tmp_path / "zero", None),
        "left": _adapter(model, tmp_path / "left", 1),
        "right": _adapter(model, tmp_path / "right", 2),
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CACHE_ROOT": str(CACHE_ROOT)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "tests" / "guards" / "vllm_multi_lora.py"), str(model),
         json.dumps(adapters), sysconfig.get_paths()["purelib"]],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    answers = result["answers"]
    assert result["engines"] == 1  # one engine for the base model, every adapter on it
    for name in ("base", "zero", "left", "right"):
        assert [a["uid"] for a in answers[name]] == ["p1", "p2", "p3"]
        # every item answered by the engine (a random model's answer is then parsed or reported unparsed)
        assert not any((a["error"] or "").startswith("request failed") for a in answers[name]), answers
        assert all(isinstance(text, str) for text in answers[name + ":text"]), answers
    assert answers["zero:text"] == answers["base:text"]
    # adapters with random updates answer with their own weights (at least one unlike the base)
    assert answers["right:text"] != answers["left:text"]
    assert answers["left:text"] != answers["base:text"] or answers["right:text"] != answers["base:text"]
