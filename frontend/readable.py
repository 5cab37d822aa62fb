"""Settings and metrics as readable rows (``key · subkey``, value) for pages, instead of JSON dumps."""

from typing import Any

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
