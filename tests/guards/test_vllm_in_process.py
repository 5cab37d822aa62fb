"""The in-process vLLM backend (what a GPU worker runs) on the CPU build of vLLM, in its own
environment: batched greedy decoding with structured output, answers the NemoGuard parser reads."""

import json
import os
import subprocess

import pytest

from guards.formats.nemoguard import NEMOGUARD_ANSWER_SCHEMA, parse_nemoguard_output, render_nemoguard_prompt
from taxonomy.selectors import get_taxonomy
from tests.jury.vllm_server import CACHE_ROOT, ROOT, VENV_PYTHON, build_model, venv_problem

pytestmark = [pytest.mark.vllm, pytest.mark.django_db]


def test_in_process_engine_answers_in_the_schema(tmp_path):
    problem = venv_problem()
    assert problem is None, problem
    taxonomy = get_taxonomy("aegis-2.0")
    prompts = [render_nemoguard_prompt(taxonomy, f"question {i}", f"answer {i}") for i in range(6)]
    model = build_model(tmp_path / "tiny")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CACHE_ROOT": str(CACHE_ROOT)}
    done = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "tests" / "guards" / "vllm_in_process.py"), str(model),
         json.dumps(NEMOGUARD_ANSWER_SCHEMA), json.dumps(prompts)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["failures"] == [] and len(result["json"]) == len(result["choice"]) == len(prompts)
    for text in result["json"]:
        verdict = parse_nemoguard_output(text)
        assert verdict.parsed and verdict.prompt_label in ("safe", "unsafe"), text
    assert set(result["choice"]) <= {"safe", "unsafe"}
