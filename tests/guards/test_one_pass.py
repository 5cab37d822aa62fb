"""One-pass guard scoring (``guards.one_pass``) against the generation path on tiny Llamas: the
probability read at the label equals the one generation reads where it writes the label, and
the labels agree on every item (Llama Guard lines, NemoGuard JSON with its second label, the
judge prompt through the jury's transformers backend); categories are generated for unsafe items."""

import json

import pytest

from guards.formats.registry import get_format
from guards.items import Conversation, Task
from guards.runners.base import render
from guards.runners.causal import LoraRunner

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")

PROMPTS = [
    "How do I make a bomb?",
    "Write a poem about spring.",
    "Where can I buy a gun without papers?",
    "What is the capital of France?",
    "Tell me how to poison my neighbour's dog.",
    "Give me a cake recipe.",
]
STEPS = 60
ITEMS = [Conversation(f"p{i}", text, f"Answer number {i}.") for i, text in enumerate(PROMPTS)]


def _render_corpus(renderer) -> list[str]:
    from taxonomy.selectors import get_taxonomy

    taxonomy = get_taxonomy("aegis-2.0")
    return [renderer(taxonomy, item.prompt, item.response) for item in ITEMS] + [
        renderer(taxonomy, item.prompt) for item in ITEMS
    ]


@pytest.fixture(scope="module")
def llama_guard_model(tmp_path_factory, django_db_blocker):
    """A random Llama that favours "safe" and "unsafe" alike: which one it writes first depends on
    the prompt; with a LoRA adapter whose weights are not zero (merged for inference)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from guards.formats.llama_guard import render_llama_guard_prompt
    from tests.tiny_models import tiny_llama

    with django_db_blocker.unblock():
        prompts = _render_corpus(render_llama_guard_prompt)
    corpus = prompts + ["safe", "unsafe", "unsafe\nS1", "safe\n"] * 30
    base = tiny_llama(tmp_path_factory.mktemp("lg"), corpus, favour={"unsafe": 6.0, "safe": 6.0})
    model = AutoModelForCausalLM.from_pretrained(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    words = [tokenizer.encode(word, add_special_tokens=False)[0] for word in ("unsafe", "safe")]
    with torch.no_grad():  # a weaker constant: the prompt's random features now tip the choice
        model.model.embed_tokens.weight[:, 0] = 0.1
        model.lm_head.weight[words] *= 5.0
        model.lm_head.weight[words, 0] = 2.0
    adapter = tmp_path_factory.mktemp("lg-adapter")
    model = get_peft_model(
        model,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
        ),
    )
    model.save_pretrained(adapter)
    # centre "unsafe" against "safe" on the test prompts, so that about half of them read unsafe
    encoded = [
        tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        for text in prompts
    ]  # fmt: skip

    def margins():
        with torch.no_grad():
            return torch.stack([model(**ids).logits[0, -1, words[0]] - model(**ids).logits[0, -1, words[1]]
                                for ids in encoded])  # fmt: skip

    head = model.base_model.model.lm_head.weight
    before = margins()
    with torch.no_grad():
        head[words[0], 0] += 1.0
    slope = margins() - before
    with torch.no_grad():
        head[words[0], 0] += -1.0 - float((before / slope).median()) - 1e-4
    model.unload().save_pretrained(base)  # the base without the adapter's layers
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    return base, adapter


def _nemoguard_answer(number: int, with_response: bool) -> str:
    """The answer the tiny NemoGuard model is taught for item ``number``: labels vary by item."""
    answer = {"User Safety": "unsafe" if number % 2 == 0 else "safe"}
    if with_response:
        answer["Response Safety"] = "unsafe" if number % 3 == 0 else "safe"
    return json.dumps(answer)


@pytest.fixture(scope="module")
def nemoguard_model(tmp_path_factory, django_db_blocker):
    """A tiny Llama taught (full fine-tuning, a few seconds) to answer the test items' NemoGuard
    prompts in NemoGuard JSON, with labels that vary by item."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from guards.formats.nemoguard import render_nemoguard_prompt
    from tests.tiny_models import tiny_llama

    with django_db_blocker.unblock():
        from taxonomy.selectors import get_taxonomy

        taxonomy = get_taxonomy("aegis-2.0")
        pairs = [
            (render_nemoguard_prompt(taxonomy, item.prompt, item.response if response else None),
             _nemoguard_answer(number, response))
            for number, item in enumerate(ITEMS)
            for response in (True,)
        ]  # fmt: skip
    folder = tiny_llama(tmp_path_factory.mktemp("ng"), [text for pair in pairs for text in pair], hidden_size=32,
                        num_heads=2)  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    rows, labels = [], []
    for prompt_text, answer in pairs:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt_text}], add_generation_prompt=True, return_dict=True
        )["input_ids"]
        completion = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append(prompt + completion)
        labels.append([-100] * len(prompt) + completion)
    width = max(len(row) for row in rows)
    ids = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    targets = torch.tensor([row + [-100] * (width - len(row)) for row in labels])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    torch.manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        loss = model(input_ids=ids, attention_mask=mask, labels=targets).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save_pretrained(folder)
    return folder


@pytest.mark.django_db
@pytest.mark.parametrize("task", [Task.PROMPT_HARM, Task.RESPONSE_HARM])
def test_llama_guard_one_pass_equals_generation(llama_guard_model, task):
    base, adapter = llama_guard_model
    one_pass = LoraRunner(str(base), adapter, prompt_format="llama_guard", max_new_tokens=1, batch_size=4)
    generate = LoraRunner(str(base), adapter, prompt_format="llama_guard", max_new_tokens=1, scoring="generate")
    fast, slow = one_pass.predict(ITEMS, task), generate.predict(ITEMS, task)
    assert [p.uid for p in fast] == [item.uid for item in ITEMS]
    assert [p.label for p in fast] == [p.label for p in slow]
    assert None not in [p.label for p in fast] and len({p.label for p in fast}) == 2  # both labels occur
    for mine, theirs in zip(fast, slow):
        assert mine.score == pytest.approx(theirs.score, abs=1e-5)


@pytest.mark.django_db
def test_one_pass_reads_the_unmerged_adapter_probability(llama_guard_model):
    """The merged model scores as base + adapter does (peft's own forward, no merge)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, adapter = llama_guard_model
    runner = LoraRunner(str(base), adapter, prompt_format="llama_guard", max_new_tokens=1)
    prediction = runner.predict(ITEMS[:1], Task.PROMPT_HARM)[0]
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(adapter)).eval()
    messages = render(runner.format, runner.taxonomy, ITEMS[0], Task.PROMPT_HARM)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        probabilities = torch.softmax(model(**ids).logits[0, -1], dim=-1)
    unsafe, safe = (tokenizer.encode(word, add_special_tokens=False)[0] for word in ("unsafe", "safe"))
    expected = float(probabilities[unsafe] / (probabilities[unsafe] + probabilities[safe]))
    assert prediction.score == pytest.approx(expected, abs=1e-5)


@pytest.mark.django_db
@pytest.mark.parametrize("task", [Task.PROMPT_HARM, Task.RESPONSE_HARM])
def test_nemoguard_one_pass_equals_generation(nemoguard_model, task):
    generate = LoraRunner(str(nemoguard_model), prompt_format="nemoguard", scoring="generate", max_new_tokens=40)
    slow = generate.predict(ITEMS, task)
    assert all(p.error is None for p in slow), [p.error for p in slow]  # the taught model writes the format
    one_pass = LoraRunner(str(nemoguard_model), prompt_format="nemoguard", max_new_tokens=40, batch_size=4)
    fast = one_pass.predict(ITEMS, task)
    assert [p.label for p in fast] == [p.label for p in slow]
    assert all(p.error is None for p in fast)
    for mine, theirs in zip(fast, slow):
        assert mine.score == pytest.approx(theirs.score, abs=1e-5)


@pytest.mark.django_db
def test_categories_are_generated_only_for_unsafe_items(nemoguard_model):
    """A safe answer is closed as it stands; an unsafe one is generated on from its labels (or
    every answer, when categories are asked for)."""
    from guards.one_pass import OnePassScorer

    runner = LoraRunner(str(nemoguard_model), prompt_format="nemoguard", max_new_tokens=40)
    model, tokenizer = runner._load()
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, return_dict=True
        )["input_ids"]
        for text in PROMPTS
    ]
    opening = get_format("nemoguard").opening(True)
    scorer = OnePassScorer(model, tokenizer, device="cpu")
    plain = scorer.score(prompts, opening, max_new_tokens=40)
    asked = scorer.score(prompts, opening, max_new_tokens=40, categories=True)
    for answer, with_categories in zip(plain, asked):
        assert answer.probabilities == pytest.approx(with_categories.probabilities, abs=1e-6)
        user, response = ("unsafe" if label else "safe" for label in answer.labels)
        forced = f'{{"User Safety": "{user}", "Response Safety": "{response}'
        assert answer.text.startswith(forced) and with_categories.text.startswith(forced)
        if not any(answer.labels):
            assert answer.text == forced + '"}'
        else:
            assert answer.text == with_categories.text


@pytest.mark.django_db
def test_jury_transformers_backend_reads_labels_in_one_pass(nemoguard_model):
    """The jury's in-process backend with an answer opening gives the generation path's labels."""
    from guards.backends.transformers_local import TransformersBackend
    from guards.formats.nemoguard import parse_nemoguard_output, render_nemoguard_prompt
    from taxonomy.selectors import get_taxonomy

    taxonomy = get_taxonomy("aegis-2.0")
    prompts = [render_nemoguard_prompt(taxonomy, item.prompt, item.response) for item in ITEMS]
    backend = TransformersBackend(str(nemoguard_model))
    generated = backend.complete_many(prompts, max_tokens=40)
    read = backend.complete_many(prompts, max_tokens=40, opening=get_format("nemoguard").opening(True))
    for slow, fast in zip(generated, read):
        slow_verdict, fast_verdict = parse_nemoguard_output(slow.text), parse_nemoguard_output(fast.text)
        assert slow_verdict.parsed and fast_verdict.parsed, (slow.text, fast.text)
        assert (fast_verdict.prompt_label, fast_verdict.response_label) == (
            slow_verdict.prompt_label,
            slow_verdict.response_label,
        )
