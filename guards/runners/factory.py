"""The runner of a registered guard, from what its registry row says (``GuardSpec``) and the
options an evaluation run or an ensemble gives it."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guards.formats.registry import get_format

from .backend import EndpointRunner
from .base import GuardRunner, as_taxonomy
from .causal import LoraRunner, VLLMLoraRunner
from .minilm import MiniLMRunner

if TYPE_CHECKING:
    from taxonomy.models import Taxonomy

GUARD_OPTIONS = {
    "name", "threshold", "taxonomy", "prompt_format", "base_url", "served_name", "api_key", "concurrency",
    "structured_output", "backend", "max_tokens", "batch_size", "max_length", "scores", "timeout", "scoring",
    "categories",
}  # fmt: skip


@dataclass(frozen=True)
class GuardSpec:
    """A registered guard: a MiniLM classifier folder (``classifier``), or a causal LM (the base
    model, with the adapter at ``path`` unless ``path`` is the base model itself) asked in
    ``prompt_format`` with ``taxonomy`` as its policy."""

    name: str
    classifier: bool
    base_model: str
    path: str
    prompt_format: str
    taxonomy: "Taxonomy | None" = None


def check_guard_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - GUARD_OPTIONS)
    if unknown:
        raise ValueError(f"unknown guard options: {', '.join(unknown)} (known: {', '.join(sorted(GUARD_OPTIONS))})")


def runner_for_spec(guard: GuardSpec, **options: Any) -> GuardRunner:
    """The runner of a registered guard. MiniLM guards run on the CPU (``threshold``,
    ``batch_size``, ``max_length``). LoRA guards (and published guards registered with a base model
    and no adapter) run on an OpenAI-compatible server when ``base_url`` is given (``served_name``:
    the adapter's name there, default the guard's name), else in this process with transformers
    (``backend="vllm"``: the in-process vLLM engine). ``taxonomy`` (default: the guard's) is the
    policy written into the prompt; ``prompt_format`` overrides the guard's."""
    check_guard_options(options)
    name = options.get("name") or guard.name
    if guard.classifier:
        return MiniLMRunner(
            guard.path,
            name=name,
            threshold=options.get("threshold", 0.5),
            batch_size=options.get("batch_size", 64),
            max_length=options.get("max_length", 128),
        )
    prompt_format = options.get("prompt_format") or guard.prompt_format
    get_format(prompt_format)
    taxonomy = as_taxonomy(options.get("taxonomy")) or guard.taxonomy
    if options.get("base_url"):
        return EndpointRunner(
            options["base_url"],
            options.get("served_name") or guard.name,
            prompt_format,
            taxonomy=taxonomy,
            name=name,
            max_tokens=options.get("max_tokens"),
            concurrency=options.get("concurrency", 8),
            structured_output=options.get("structured_output", False),
            api_key=options.get("api_key"),
            timeout=options.get("timeout", 60.0),
        )
    adapter = guard.path if guard.path and guard.path != guard.base_model else None
    if options.get("backend") == "vllm":
        return VLLMLoraRunner(
            guard.base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
            max_new_tokens=options.get("max_tokens"),
        )  # fmt: skip
    if options.get("backend") not in (None, "transformers"):
        raise ValueError(f"unknown backend {options['backend']!r} for an in-process guard: transformers or vllm")
    return LoraRunner(
        guard.base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
        max_new_tokens=options.get("max_tokens"), batch_size=options.get("batch_size"),
        scores=options.get("scores", True), scoring=options.get("scoring", "one_pass"),
        categories=options.get("categories", False),
    )  # fmt: skip
