"""Guard answers read in one forward pass: the answer's opening is teacher-forced after the prompt
(NemoGuard ``{"User Safety": "``, Llama Guard's first line) and P(unsafe) against P(safe) is read
where the label word goes, instead of decoding the answer token by token. A second label (the
NemoGuard response's) follows the first one chosen, on the first pass's key/value cache. The rest
of an answer (its categories) is generated only for items found unsafe, or for every item when
asked; a safe answer is closed as the format closes it.

Prompts are taken longest first in batches sized from the free GPU memory (a fixed size on a
CPU); answers come back in the prompts' order. torch is imported when a scorer is made."""

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ApplicationError

if TYPE_CHECKING:
    from guards.formats.base import AnswerOpening

CPU_BATCH_SIZE = 8
MAX_BATCH_SIZE = 256
MEMORY_SHARE = 0.7  # of the free GPU memory, for one batch's activations and cache


class OnePassError(ApplicationError):
    """The tokenizer cannot read this format's labels in one pass (use generation)."""


@dataclass(frozen=True)
class ScoredAnswer:
    """``probabilities``: P(positive) at each label, renormalised between the two words' first
    tokens; ``text``: the answer, the forced opening with the labels chosen, then the generated
    rest (unsafe items, or all when asked) or the format's closing."""

    probabilities: tuple[float, ...]
    text: str

    @property
    def labels(self) -> tuple[bool, ...]:
        return tuple(p >= 0.5 for p in self.probabilities)


def inference_batch_size(model, tokens: int, device: str) -> int:
    """Rows of ``tokens`` tokens whose forward pass (activations of one layer at a time and the
    key/value cache of every layer) fits in MEMORY_SHARE of the free GPU memory; CPU_BATCH_SIZE
    on a CPU."""
    if device != "cuda":
        return CPU_BATCH_SIZE
    import torch

    config = model.config
    width = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or width // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    element = next(model.parameters()).element_size()
    cache = 2 * config.num_hidden_layers * kv_heads * head_dim * element
    activations = (6 * width + 3 * getattr(config, "intermediate_size", 4 * width)) * element
    free, _ = torch.cuda.mem_get_info()
    rows = int(MEMORY_SHARE * free / max(1, tokens * (cache + activations)))
    return max(1, min(MAX_BATCH_SIZE, rows))


class OnePassScorer:
    """Reads a guard's labels in one forward pass (``model`` a causal LM in eval mode on
    ``device``; an adapter is best merged into it first)."""

    def __init__(self, model, tokenizer, *, device: str, batch_size: int | None = None):
        import torch

        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, device, batch_size
        self.torch = torch
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._encoded: dict[str, list[int]] = {}
        # transformers renamed ``past_key_values`` to ``cache`` (5.2x); both spellings are in use
        self._cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def score(
        self, prompts: list[list[int]], opening: "AnswerOpening", *, max_new_tokens: int, categories: bool = False
    ) -> list[ScoredAnswer]:
        """One answer per prompt (token ids of the whole prompt, chat template included)."""
        answers: list[ScoredAnswer | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        start = 0
        while start < len(order):
            size = self.batch_size or inference_batch_size(
                self.model, len(prompts[order[start]]) + max_new_tokens, self.device
            )
            chunk = order[start : start + size]
            for index, answer in zip(chunk, self._score_batch([prompts[i] for i in chunk], opening, max_new_tokens,
                                                               categories)):  # fmt: skip
                answers[index] = answer
            start += size
        return answers  # type: ignore[return-value]

    # --- tokens -------------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        if text not in self._encoded:
            self._encoded[text] = self.tokenizer.encode(text, add_special_tokens=False)
        return self._encoded[text]

    def _extension(self, before: str, after: str) -> list[int]:
        """The tokens ``after`` adds to ``before`` when the whole is tokenized at once."""
        head, whole = self._ids(before), self._ids(before + after)
        if whole[: len(head)] != head or len(whole) == len(head):
            raise OnePassError(
                f"this tokenizer merges {after!r} into the text before it: its labels cannot be read in one pass"
            )
        return whole[len(head) :]

    def _label_tokens(self, answer: str, opening: "AnswerOpening") -> tuple[int, int]:
        positive = self._extension(answer, opening.positive)[0]
        negative = self._extension(answer, opening.negative)[0]
        if positive == negative:
            raise OnePassError(f"{opening.positive!r} and {opening.negative!r} start with the same token")
        return positive, negative

    def _left_padded(self, rows: list[list[int]]):
        width = max(len(row) for row in rows)
        ids = [[self.pad_id] * (width - len(row)) + row for row in rows]
        mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
        tensor = self.torch.tensor
        return tensor(ids, device=self.device), tensor(mask, device=self.device)

    # --- one batch -----------------------------------------------------------------------------

    def _score_batch(
        self, prompts: list[list[int]], opening: "AnswerOpening", max_new_tokens: int, categories: bool
    ) -> list[ScoredAnswer]:
        torch = self.torch
        texts = [""] * len(prompts)  # the answer so far, per row
        fed: list[list[int]] = [[] for _ in prompts]  # the answer's tokens given to the model, per row
        probabilities: list[list[float]] = [[] for _ in prompts]
        cache, mask = None, None
        with torch.inference_mode():
            for stage, before in enumerate(opening.before_labels):
                new, offsets = [], []
                for row, text in enumerate(texts):
                    whole = self._ids(text + before)
                    if whole[: len(fed[row])] != fed[row]:
                        raise OnePassError(f"this tokenizer merges {before!r} into the label before it")
                    offsets.append(len(prompts[row]) + len(fed[row]) if stage else 0)
                    new.append((prompts[row] if stage == 0 else []) + whole[len(fed[row]) :])
                    fed[row], texts[row] = whole, text + before
                ids, stage_mask = self._left_padded(new)
                mask = stage_mask if mask is None else torch.cat([mask, stage_mask], dim=1)
                shift = torch.tensor(offsets, device=self.device)[:, None]
                positions = (stage_mask.cumsum(-1) - 1).clamp(min=0) + shift
                carried = {} if cache is None else {self._cache_name: cache}
                output = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=stage + 1 < len(opening.before_labels),
                    logits_to_keep=1,
                    **carried,
                )
                cache = getattr(output, self._cache_name)
                last = output.logits[:, -1].float()
                last = (last - last.max(dim=-1, keepdim=True).values).exp()
                for row, text in enumerate(texts):
                    positive, negative = self._label_tokens(text, opening)
                    yes, no = float(last[row, positive]), float(last[row, negative])
                    probability = yes / (yes + no) if yes + no > 0 else 0.5
                    probabilities[row].append(probability)
                    texts[row] = text + (opening.positive if probability >= 0.5 else opening.negative)
            del cache
        answers = [ScoredAnswer(tuple(p), t + opening.closing) for p, t in zip(probabilities, texts)]
        rest = [row for row, p in enumerate(probabilities) if categories or any(x >= 0.5 for x in p)]
        if rest:
            tails = self._generate_rest([prompts[r] for r in rest], [texts[r] for r in rest], max_new_tokens)
            for row, tail in zip(rest, tails):
                if tail is not None:
                    answers[row] = ScoredAnswer(answers[row].probabilities, texts[row] + tail)
        return answers

    def _generate_rest(self, prompts: list[list[int]], answers: list[str], max_new_tokens: int) -> list[str | None]:
        """Greedy continuation of each forced answer (its categories and closing); None for every
        answer when the opening used up the token budget (the answer is then closed as is)."""
        rows = [prompt + self._ids(answer) for prompt, answer in zip(prompts, answers)]
        budget = max_new_tokens - min(len(self._ids(answer)) for answer in answers)
        if budget < 1:
            return [None] * len(answers)
        ids, mask = self._left_padded(rows)
        with self.torch.inference_mode():
            output = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=budget, do_sample=False, pad_token_id=self.pad_id
            )
        stops = {self.tokenizer.eos_token_id, self.pad_id}
        tails = []
        for generated in output[:, ids.shape[1] :].tolist():
            ends = [i for i, token in enumerate(generated) if token in stops]
            tails.append(self.tokenizer.decode(generated[: ends[0]] if ends else generated, skip_special_tokens=True))
        return tails
