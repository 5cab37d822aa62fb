"""Settings and metrics as readable rows (``key · subkey``, value) for pages, instead of JSON
dumps; base models by names people read (server paths to staff only)."""

from pathlib import PurePosixPath
from typing import Any

from guards.loading import MINILM_NAME, is_bundled_minilm

LABELS = {
    "lr": "learning rate",
    "learning_rate": "learning rate",
    "max_steps": "max steps (−1: whole epochs)",
    "f1": "F1",
    "auprc": "AUPRC",
    "base_url": "server",
}


def _key(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value) or "—"
    return str(value)


def settings_rows(value: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts flattened into (``a · b``, text) rows, in their stored order."""
    rows: list[tuple[str, str]] = []
    for key, item in (value or {}).items():
        name = f"{prefix} · {_key(str(key))}" if prefix else _key(str(key))
        if isinstance(item, dict):
            rows.extend(settings_rows(item, name))
        else:
            rows.append((name, _value(item)))
    return rows


def _is_server_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or "\\" in value


def base_model_name(base_model: str, *, staff: bool) -> str:
    """A guard's base model: the bundled MiniLM by its name, a Hugging Face id as it is, a folder on
    the server by its path to staff and by its last name to everyone else."""
    if is_bundled_minilm(base_model):
        return MINILM_NAME
    if _is_server_path(base_model) and not staff:
        return f"{PurePosixPath(base_model).name} (a folder on the server)"
    return base_model

