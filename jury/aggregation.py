"""Majority vote of the jury: safe/unsafe over the jurors that answered, categories named by
enough of them; a tie or too many abstentions leaves the decision to humans."""

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class JuryDecision:
    label: str | None
    categories: list[str]
    answered: int
    reason: str = ""


def aggregate(
    answers: list[tuple[str | None, list[str]]],
    *,
    jurors: int,
    min_category_votes: int = 2,
    min_answers: int | None = None,
) -> JuryDecision:
    """``answers``: (label or None for an abstention, category codes) per juror."""
    needed = min_answers if min_answers is not None else jurors // 2 + 1
    given = [(label, codes) for label, codes in answers if label is not None]
    if len(given) < needed:
        return JuryDecision(None, [], len(given), f"only {len(given)} of {jurors} jurors answered (need {needed})")
    votes = Counter(label for label, _ in given)
    if votes["unsafe"] == votes["safe"]:
        return JuryDecision(None, [], len(given), f"tie: {votes['unsafe']} unsafe, {votes['safe']} safe")
    label = "unsafe" if votes["unsafe"] > votes["safe"] else "safe"
    categories: list[str] = []
    if label == "unsafe":
        named = Counter(code for verdict, codes in given if verdict == "unsafe" for code in dict.fromkeys(codes))
        categories = [code for code, count in named.most_common() if count >= min_category_votes]
    return JuryDecision(label, categories, len(given))
