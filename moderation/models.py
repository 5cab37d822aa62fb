"""Online moderation with an adaptive ensemble of guards (AEGIS 1.0): ensembles of experts, their
online state, the history of weight updates and the log of decisions."""

from django.conf import settings
from django.db import models

from annotation.labels import SafetyLabel
from annotation.models import Project, Sample


class Algorithm(models.TextChoices):
    """The presets of ``moderation.online`` and its plain algorithms (which need η, Hedge excepted)."""

    PAPER_WM = "paper-wm", "Weighted Majority, η = 0.5 (AEGIS 1.0)"
    PAPER_FPL = "paper-fpl", "Follow the Perturbed Leader, η = 0.26 (AEGIS 1.0)"
    HEDGE = "hedge", "Hedge (tuned η with a horizon, else anytime)"
    WM = "wm", "Weighted Majority, your η"
    FPL = "fpl", "Follow the Perturbed Leader, your η"


class Ensemble(models.Model):
    """A deployed ensemble: its experts (``Expert`` rows, in order) vote and the online algorithm
    weighs them; feedback on its decisions updates the weights (``EnsembleState``)."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ensembles",
        help_text="Whose reviewers and admins give feedback, and whose final labels feed the ensemble. "
        "Without one, only staff give feedback.",
    )
    algorithm = models.CharField(max_length=10, choices=Algorithm.choices, default=Algorithm.PAPER_WM)
    eta = models.FloatField(null=True, blank=True, help_text="Learning rate; empty for a preset's (or Hedge's).")
    horizon = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hedge only: expected rounds T, for η = sqrt(8 ln N / T)."
    )
    seed = models.BigIntegerField(default=0, help_text="Seeds the random draws of Hedge and FPL.")
    active = models.BooleanField(default=True, help_text="A paused ensemble answers 409.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ExpertTask(models.TextChoices):
    AUTO = "auto", "Response harm when there is a response, else prompt harm"
    PROMPT = "prompt", "Prompt harm"
    RESPONSE = "response", "Response harm (abstains without a response)"


class Expert(models.Model):
    """One expert of an ensemble, at a fixed position: a registered guard model or a juror."""

    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="experts")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    guard = models.ForeignKey(
        "training.GuardModel", null=True, blank=True, on_delete=models.PROTECT, related_name="ensemble_experts"
    )
    juror = models.ForeignKey(
        "jury.Juror", null=True, blank=True, on_delete=models.PROTECT, related_name="ensemble_experts"
    )
    task = models.CharField(max_length=10, choices=ExpertTask.choices, default=ExpertTask.AUTO)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Guards: options of training.runners.runner_for_guard (threshold, base_url, served_name, …).",
    )

    class Meta:
        ordering = ["ensemble", "position"]
        constraints = [
            models.UniqueConstraint(fields=["ensemble", "position"], name="expert_ensemble_position"),
            models.UniqueConstraint(fields=["ensemble", "name"], name="expert_ensemble_name"),
            models.CheckConstraint(
                condition=models.Q(guard__isnull=False, juror__isnull=True)
                | models.Q(guard__isnull=True, juror__isnull=False),
                name="expert_guard_xor_juror",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EnsembleState(models.Model):
    """The ensemble between rounds: ``moderation.online.OnlineState`` as JSON. ``rounds`` counts the
    feedback applied; every update locks this row, so concurrent feedback is applied one at a time."""

    ensemble = models.OneToOneField(Ensemble, on_delete=models.CASCADE, primary_key=True, related_name="state")
    state = models.JSONField()
    rounds = models.PositiveIntegerField(default=0)
    tallies = models.JSONField(
        default=dict,
        blank=True,
        help_text="Running counts over the feedback rounds: each expert's mistakes and abstentions, the "
        "ensemble's mistakes and expected mistakes (kept with the state, so the live page reads no history).",
    )
    updated_at = models.DateTimeField(auto_now=True)


class Decision(models.Model):
    """One moderation request and what the ensemble answered, with the experts' votes as asked."""

    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="decisions")
    prompt = models.TextField()
    response = models.TextField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, help_text="sha256 of (prompt, response), to match final labels.")
    votes = models.JSONField(help_text='Per expert, in order: {"vote": 1|0|null, "score", "categories", "error", "ms"}')
    weights = models.JSONField(help_text="The distribution over experts when deciding.")
    state_round = models.PositiveIntegerField(help_text="Feedback rounds the state had seen when deciding.")
    draw_seed = models.BigIntegerField(default=0, help_text="Seed of this decision's random draws (Hedge, FPL).")
    decision = models.CharField(max_length=10, choices=SafetyLabel.choices[:2])
    p_unsafe = models.FloatField()
    leader = models.PositiveSmallIntegerField(null=True, blank=True, help_text="FPL: the expert followed.")
    categories = models.JSONField(default=list, blank=True)
    latency_ms = models.FloatField(help_text="Experts and ensemble, excluding the HTTP layer.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    feedback_label = models.CharField(max_length=10, choices=SafetyLabel.choices[:2], null=True, blank=True)
    feedback_source = models.CharField(max_length=20, blank=True, help_text="reviewer or final_label")
    feedback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    feedback_sample = models.ForeignKey(
        Sample, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderation_decisions"
    )
    feedback_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["ensemble", "-created_at"], name="decision_ensemble_recent"),
            models.Index(fields=["content_hash"], name="decision_content"),
        ]

    @property
    def vote_vector(self) -> list[int | None]:
        return [entry.get("vote") for entry in self.votes]


class WeightHistory(models.Model):
    """One applied feedback, in commit order (``round`` 1, 2, …): replaying the rows from a fresh
    state gives ``EnsembleState`` exactly."""

    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="history")
    round = models.PositiveIntegerField()
    decision = models.OneToOneField(Decision, null=True, blank=True, on_delete=models.SET_NULL, related_name="history")
    votes = models.JSONField(help_text="The experts' votes (1 unsafe, 0 safe, null abstained).")
    truth = models.PositiveSmallIntegerField(help_text="1 unsafe, 0 safe.")
    predicted = models.PositiveSmallIntegerField(help_text="The ensemble's decision on these votes before the update.")
    p_unsafe = models.FloatField(help_text="Its probability of unsafe before the update (its expected loss).")
    weights = models.JSONField(help_text="The distribution over experts after the update.")
    losses = models.JSONField(help_text="The experts' cumulative (comparator) losses after the update.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ensemble", "round"]
        constraints = [models.UniqueConstraint(fields=["ensemble", "round"], name="history_ensemble_round")]
        verbose_name_plural = "weight history"
