"""Extension points that apps built on annotation fill in from their AppConfig.ready() (the jury
registers its agreement with humans, its dataset-card facts and its verdicts for reviewers), so
that annotation imports none of them. An extension nobody provides answers its empty value."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

Answer = TypeVar("Answer")


class Extension(Generic[Answer]):
    """One function a higher app provides; called before any app provides it, answers ``empty()``."""

    def __init__(self, empty: Callable[[], Answer]):
        self.empty = empty
        self.provider: Callable[..., Answer] | None = None

    def provide(self, provider: Callable[..., Answer]) -> None:
        self.provider = provider

    def __call__(self, *args: Any, **kwargs: Any) -> Answer:
        return self.empty() if self.provider is None else self.provider(*args, **kwargs)


# (project) -> {part: {juror: kappa stat}}: the agreement report's "jury_vs_humans".
jury_agreement: Extension[dict[str, Any]] = Extension(dict)
# (project) -> {"jury": ..., "refusal_generation": [...]}: the dataset card's jury section.
jury_card_facts: Extension[dict[str, Any]] = Extension(lambda: {"jury": None, "refusal_generation": []})
# (sample) -> [{"juror", "part", "label", "categories", "error"}]: the jury's verdicts shown to reviewers.
jury_verdicts: Extension[list[dict[str, Any]]] = Extension(list)
