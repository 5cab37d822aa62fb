"""Online ensemble of guard experts: prediction with expert advice on safe (0) / unsafe (1) votes.

Three algorithms over one state, pure functions ``predict(state, votes)`` and
``update(state, votes, truth)``:

- ``wm``: deterministic Weighted Majority (Littlestone–Warmuth), weight (1 − η)^mistakes, the
  heavier side wins and a tie goes to unsafe (safety first); the sides are correctly rounded
  double-precision sums, so sides within one part in 2^53 of each other are a tie.
- ``hedge``: exponential weights exp(−η · loss), unsafe with probability = weight of the unsafe
  voters; η = sqrt(8 ln N / T) for a horizon T, otherwise the anytime η_t = sqrt(8 ln N / t).
- ``fpl``: Follow the Perturbed Leader with one-sided exponential perturbations (Kalai–Vempala
  FPL*, as analysed by Hutter & Poland): follow argmin_i L_i − Z_i / η with Z_i ~ Exp(1) drawn
  afresh each round. The probability that expert i leads is c_i ∫₀¹ Π_{j≠i} (1 − c_j u) du with
  c_j = exp(−η (L_j − min L)), computed exactly by Gauss–Legendre quadrature, so its expected
  loss is exact too.

Presets: ``paper-wm`` (WM, η = 0.5), ``paper-fpl`` (FPL, η = 0.26), ``hedge``.

State (``OnlineState``) is frozen and plain JSON: the experts' cumulative losses, the round
count, η and a seed. Weights are recomputed from the losses relative to the smallest one, so
10^5 rounds never underflow to all-zero weights. Random draws are a hash of (seed, round,
slot): a randomized ensemble restored from its state repeats an uninterrupted run exactly.

Abstention (a vote of None): the expert does not vote, and its loss for the round is the
ensemble's own expected loss, as if it had agreed with the ensemble (the sleeping-experts
reduction; for WM it is penalised exactly when the ensemble errs). The ensemble's decision is
unchanged by this, and every bound below holds against these comparator losses, which are an
expert's mistakes when it never abstains. If no expert votes the ensemble says unsafe; an FPL
leader that abstains is replaced by a draw from the leader distribution of the voters.
Leaving abstainers untouched would void the guarantees: an expert that votes only when it is
sure has almost no mistakes while the ensemble may err on every other round.

Bounds, on N experts after t rounds, L* the smallest comparator loss, checked at every round:

- WM: M ≤ (L* ln(1/(1−η)) + ln N) / ln(2/(2−η)), the exact Littlestone–Warmuth bound, which is
  2.41 (L* + log2 N) at η = 0.5 (both reported then).
- Hedge: E[L] − L* ≤ ln N/η + ηt/8, i.e. sqrt(T ln N / 2) at t = T for the tuned η; anytime:
  E[L] − L* ≤ sqrt(2t ln N) + sqrt(ln N / 8) (Cesa-Bianchi & Lugosi, Theorem 2.3).
- FPL: E[L] ≤ e^η (L* + H_N/η), H_N = 1 + 1/2 + … + 1/N (one step of an expert's loss
  moves its leader probability by at most a factor e^η; be-the-leader costs E max Z/η = H_N/η).
"""

import hashlib
import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Self

import numpy as np

Vote = int | None
ALGORITHMS = ("wm", "hedge", "fpl")
PRESETS: dict[str, tuple[str, float | None]] = {
    "paper-wm": ("wm", 0.5),
    "paper-fpl": ("fpl", 0.26),
    "hedge": ("hedge", None),
}


@dataclass(frozen=True)
class OnlineState:
    """An ensemble between rounds; ``eta`` None is Hedge's anytime rate."""

    algorithm: str
    eta: float | None
    losses: tuple[float, ...]
    rounds: int = 0
    seed: int = 0

    @property
    def n_experts(self) -> int:
        return len(self.losses)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {**asdict(self), "losses": list(self.losses)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of ``to_dict``."""
        return cls(**{**data, "losses": tuple(float(loss) for loss in data["losses"])})


@dataclass(frozen=True)
class Forecast:
    """One round's decision, its probability of being unsafe and the distribution over experts used."""

    decision: int
    p_unsafe: float
    weights: tuple[float, ...]
    leader: int | None = None


def new_state(
    algorithm: str, n_experts: int, *, eta: float | None = None, horizon: int | None = None, seed: int = 0
) -> OnlineState:
    """A fresh ensemble of one of ``ALGORITHMS`` or ``PRESETS`` (a preset's η cannot be changed)."""
    if algorithm in PRESETS:
        algorithm, preset_eta = PRESETS[algorithm]
        if preset_eta is not None and eta not in (None, preset_eta):
            raise ValueError(f"the preset fixes η = {preset_eta}")
        eta = preset_eta if eta is None else eta
    if algorithm == "hedge" and eta is None and horizon and n_experts > 1:
        eta = math.sqrt(8 * math.log(n_experts) / horizon)
    _check_parameters(algorithm, n_experts, eta)
    return OnlineState(algorithm, None if eta is None else float(eta), (0.0,) * n_experts, 0, seed)


def _check_parameters(algorithm: str, n_experts: int, eta: float | None) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {ALGORITHMS} or {tuple(PRESETS)}")
    if n_experts < 1:
        raise ValueError("an ensemble needs at least one expert")
    if eta is None and algorithm != "hedge":
        raise ValueError(f"{algorithm} needs η")
    if eta is not None and not (0 < eta < (1 if algorithm == "wm" else math.inf)):
        raise ValueError(f"η = {eta} is out of range for {algorithm}")


def _check_votes(state: OnlineState, votes: Sequence[Vote]) -> None:
    if len(votes) != state.n_experts or any(vote not in (0, 1, None) for vote in votes):
        raise ValueError(f"expected {state.n_experts} votes of 0, 1 or None, got {list(votes)}")


def _eta(state: OnlineState) -> float:
    """η of the coming round (Hedge without a horizon: sqrt(8 ln N / t))."""
    if state.eta is None:
        return math.sqrt(8 * math.log(state.n_experts) / (state.rounds + 1))
    return state.eta


def _relative_weights(state: OnlineState, reference: float) -> np.ndarray:
    """Weights scaled so that an expert whose loss is ``reference`` weighs 1."""
    base = 1 - state.eta if state.algorithm == "wm" else math.exp(-_eta(state))
    return base ** (np.asarray(state.losses) - reference)


@cache
def _quadrature(n_experts: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1], exact for polynomials of degree < n_experts + 1."""
    nodes, weights = np.polynomial.legendre.leggauss(n_experts // 2 + 1)
    return (nodes + 1) / 2, weights / 2


def _leader_probabilities(scale: np.ndarray) -> np.ndarray:
    """P(i leads) = c_i ∫₀¹ Π_{j≠i} (1 − c_j u) du for exponential perturbations."""
    nodes, quadrature_weights = _quadrature(len(scale))
    factors = 1 - np.outer(nodes, scale)
    others = np.stack([np.prod(np.delete(factors, i, axis=1), axis=1) for i in range(len(scale))], axis=1)
    probabilities = scale * (quadrature_weights @ others)
    return probabilities / probabilities.sum()


def weights(state: OnlineState) -> np.ndarray:
    """The distribution over experts (FPL: the probability that each is the perturbed leader)."""
    relative = _relative_weights(state, min(state.losses))
    if state.algorithm == "fpl":
        return _leader_probabilities(relative)
    return relative / math.fsum(relative)


def _p_unsafe(state: OnlineState, votes: Sequence[Vote], distribution: np.ndarray) -> float:
    """Probability of an unsafe decision given the voters' weights (WM: 0 or 1)."""
    voters = [i for i, vote in enumerate(votes) if vote is not None]
    if not voters:
        return 1.0
    if state.algorithm == "fpl":
        mass = distribution
    else:
        mass = _relative_weights(state, min(state.losses[i] for i in voters))
    unsafe = math.fsum(mass[i] for i in voters if votes[i] == 1)
    safe = math.fsum(mass[i] for i in voters if votes[i] == 0)
    if state.algorithm == "wm":
        return float(unsafe >= safe)
    return unsafe / (unsafe + safe) if unsafe + safe > 0 else 1.0


def _draw(state: OnlineState, slot: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, round, slot)."""
    digest = hashlib.blake2b(f"{state.seed}:{state.rounds}:{slot}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest) >> 11) / 2**53


def _perturbed_leader(state: OnlineState) -> int:
    """argmin_i L_i − Z_i / η with this round's Z_i ~ Exp(1)."""
    noise = np.array([-math.log1p(-_draw(state, i)) for i in range(state.n_experts)])
    return int(np.argmin(np.asarray(state.losses) - noise / state.eta))


def predict(state: OnlineState, votes: Sequence[Vote]) -> Forecast:
    """The ensemble's decision for this round's votes."""
    _check_votes(state, votes)
    distribution = weights(state)
    p_unsafe = _p_unsafe(state, votes, distribution)
    leader = None
    if state.algorithm == "wm":
        decision = int(p_unsafe)
    elif state.algorithm == "hedge":
        decision = int(_draw(state, 0) < p_unsafe)
    else:
        leader = _perturbed_leader(state)
        vote = votes[leader]
        decision = int(_draw(state, state.n_experts) < p_unsafe) if vote is None else int(vote)
    return Forecast(decision, p_unsafe, tuple(distribution.tolist()), leader)


def update(state: OnlineState, votes: Sequence[Vote], truth: int) -> OnlineState:
    """The state once this round's true label is known."""
    _check_votes(state, votes)
    return _advance(state, votes, truth, _p_unsafe(state, votes, weights(state)))


def _advance(state: OnlineState, votes: Sequence[Vote], truth: int, p_unsafe: float) -> OnlineState:
    """Add each expert's loss; an abstainer's is the ensemble's expected loss."""
    if truth not in (0, 1):
        raise ValueError(f"the truth is 0 (safe) or 1 (unsafe), not {truth!r}")
    expected = abs(p_unsafe - truth)
    losses = tuple(
        loss + (expected if vote is None else float(vote != truth)) for loss, vote in zip(state.losses, votes)
    )
    return replace(state, losses=losses, rounds=state.rounds + 1)


@dataclass(frozen=True)
class Bound:
    """A guarantee as allowed (expected) regret after each round, and whether it held at every round."""

    statement: str
    allowed: np.ndarray
    held: bool


@dataclass(frozen=True)
class Simulation:
    """A replayed stream; per-round arrays are cumulative, shape (T,) or (T, N)."""

    experts: list[str]
    items: list[Hashable]
    state: OnlineState
    decisions: np.ndarray
    p_unsafe: np.ndarray
    weights: np.ndarray
    expert_mistakes: np.ndarray
    comparator_losses: np.ndarray
    mistakes: np.ndarray
    expected_mistakes: np.ndarray
    bounds: dict[str, Bound]

    @property
    def regret(self) -> np.ndarray:
        """Realised mistakes minus the best expert's comparator loss so far."""
        return self.mistakes - self.comparator_losses.min(axis=1)

    @property
    def expected_regret(self) -> np.ndarray:
        """Expected mistakes minus the best expert's comparator loss so far."""
        return self.expected_mistakes - self.comparator_losses.min(axis=1)


def allowed_regret(state: OnlineState, best: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """The bounds of ``state``'s algorithm for best comparator losses after rounds 1, 2, …."""
    eta, log_n = state.eta, math.log(state.n_experts)
    rounds = np.arange(1, len(best) + 1)
    if state.algorithm == "wm":
        mistakes = (best * -math.log1p(-eta) + log_n) / -math.log1p(-eta / 2)
        bounds = {"wm": ("M ≤ (m ln(1/(1−η)) + ln N) / ln(2/(2−η))", mistakes - best)}
        if eta == 0.5:
            bounds["wm-2.41"] = ("M ≤ 2.41 (m + log2 N)", 2.41 * (best + log_n / math.log(2)) - best)
        return bounds
    if state.algorithm == "hedge" and eta is None:
        anytime = np.sqrt(2 * rounds * log_n) + math.sqrt(log_n / 8)
        return {"hedge": ("E[L] − L* ≤ sqrt(2t ln N) + sqrt(ln N / 8)", anytime)}
    if state.algorithm == "hedge":
        return {"hedge": ("E[L] − L* ≤ ln N / η + ηt / 8", log_n / eta + eta * rounds / 8)}
    harmonic = sum(1 / k for k in range(1, state.n_experts + 1))
    return {"fpl": ("E[L] ≤ e^η (L* + H_N / η)", math.expm1(eta) * best + math.exp(eta) * harmonic / eta)}


def simulate(
    stream: Sequence[tuple[Hashable, int]],
    expert_predictions: Mapping[str, Mapping[Hashable, Vote]],
    algorithm: str = "paper-wm",
    seed: int = 0,
    *,
    eta: float | None = None,
    shuffle: bool = False,
) -> Simulation:
    """Replay (item, truth) pairs with stored votes (a missing one abstains); ``seed`` shuffles and draws."""
    rows = list(stream)
    if shuffle:
        random.Random(seed).shuffle(rows)
    experts = list(expert_predictions)
    state = new_state(algorithm, len(experts), eta=eta, horizon=len(rows), seed=seed)
    decisions, p_unsafe, distributions, expert_errors, comparator = [], [], [], [], []
    for item, truth in rows:
        votes = [expert_predictions[expert].get(item) for expert in experts]
        decision = predict(state, votes)
        state = _advance(state, votes, truth, decision.p_unsafe)
        decisions.append(decision.decision)
        p_unsafe.append(decision.p_unsafe)
        distributions.append(decision.weights)
        expert_errors.append([vote is not None and vote != truth for vote in votes])
        comparator.append(state.losses)
    truths = np.array([truth for _, truth in rows], dtype=float)
    shape = (len(rows), len(experts))
    result = Simulation(
        experts=experts,
        items=[item for item, _ in rows],
        state=state,
        decisions=np.array(decisions, dtype=int),
        p_unsafe=np.array(p_unsafe, dtype=float),
        weights=np.array(distributions, dtype=float).reshape(shape),
        expert_mistakes=np.cumsum(np.array(expert_errors, dtype=int).reshape(shape), axis=0),
        comparator_losses=np.array(comparator, dtype=float).reshape(shape),
        mistakes=np.cumsum(np.array(decisions) != truths),
        expected_mistakes=np.cumsum(np.abs(np.array(p_unsafe) - truths)),
        bounds={},
    )
    return replace(result, bounds=_check_bounds(result))


def _check_bounds(result: Simulation) -> dict[str, Bound]:
    """Each bound with whether the expected regret stayed within it (up to rounding) at every round."""
    regret = result.expected_regret
    slack = 1e-9 * np.arange(1, len(regret) + 1)
    bounds = allowed_regret(result.state, result.comparator_losses.min(axis=1))
    return {
        name: Bound(statement, allowed, bool(np.all(regret <= allowed + slack)))
        for name, (statement, allowed) in bounds.items()
    }


def plot_simulation(result: Simulation, path: str | Path) -> Path:
    """Write a PNG of cumulative mistakes, regret with its bounds, and the weights over time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rounds = np.arange(1, len(result.items) + 1)
    figure = Figure(figsize=(8, 9))
    FigureCanvasAgg(figure)
    mistakes_axis, regret_axis, weights_axis = figure.subplots(3, 1, sharex=True)
    for index, expert in enumerate(result.experts):
        mistakes_axis.plot(rounds, result.expert_mistakes[:, index], linewidth=1, label=expert)
    mistakes_axis.plot(rounds, result.mistakes, color="black", linewidth=2, label="ensemble")
    regret_axis.plot(rounds, result.regret, color="black", linewidth=1.5, label="regret")
    if result.state.algorithm != "wm":
        mistakes_axis.plot(rounds, result.expected_mistakes, "k--", linewidth=1, label="ensemble (expected)")
        regret_axis.plot(rounds, result.expected_regret, "k--", linewidth=1, label="expected regret")
    for name, bound in result.bounds.items():
        verdict = "held" if bound.held else "violated"
        regret_axis.plot(rounds, bound.allowed, linestyle=":", label=f"bound {name}: {bound.statement} ({verdict})")
    if len(rounds):
        weights_axis.stackplot(rounds, result.weights.T, labels=result.experts)
    mistakes_axis.set_ylabel("cumulative mistakes")
    regret_axis.set_ylabel("regret vs best expert")
    weights_axis.set_ylabel("weight")
    weights_axis.set_xlabel("round")
    eta = "anytime η" if result.state.eta is None else f"η = {result.state.eta:g}"
    mistakes_axis.set_title(f"Online ensemble: {result.state.algorithm}, {eta}, N = {len(result.experts)}")
    for axis in (mistakes_axis, regret_axis, weights_axis):
        axis.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110)
    return Path(path)
