"""Pages of online moderation: the ensembles a reviewer follows, and one ensemble live (weights
over time, experts, disagreement, recent decisions with feedback buttons, a form to try it)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from frontend.charts import weights_svg
from frontend.readable import settings_rows
from moderation import selectors, services
from moderation.models import Ensemble

RECENT = 50


@login_required
def ensembles(request):
    rows = [(ensemble, ensemble.decisions.count()) for ensemble in selectors.reviewable_ensembles(request.user)]
    return render(request, "frontend/moderation_list.html", {"ensembles": rows})


@login_required
def ensemble(request, slug: str):
    """The live ensemble. POST: feedback on a decision (``decision``, ``label``) or a try (``prompt``)."""
    current = get_object_or_404(Ensemble.objects.select_related("project"), slug=slug)
    if not services.can_review(request.user, current):
        raise PermissionDenied("reviewers and admins of the ensemble's project only")
    error, tried = "", None
    if request.method == "POST":
        try:
            if "decision" in request.POST:
                decision_id = int(request.POST["decision"])
                if not current.decisions.filter(pk=decision_id).exists():
                    raise services.ModerationError(f"no decision {decision_id} in this ensemble")
                services.record_feedback(decision_id, request.POST.get("label", ""), by=request.user)
                return redirect("frontend:moderation", slug=slug)
            prompt = request.POST.get("prompt", "")
            if not prompt.strip():
                raise services.ModerationError("write a prompt to try")
            response = request.POST.get("response") or None
            tried = services.moderate(current, prompt, response, by=request.user)
        except (ValueError, services.ModerationError) as problem:
            error = str(problem)
    overview = selectors.overview(current)
    rounds, weights = selectors.weight_series(current)
    names = [expert.name for expert in overview["experts"]]
    # each vote with its error, so that the page says why an expert abstained
    decisions = [(d, list(zip(names, d.votes))) for d in selectors.recent_decisions(current, RECENT)]
    expert_settings = [settings_rows(expert.options) for expert in selectors.experts_of(current)]
    context = {
        "ensemble": current,
        "overview": overview,
        "experts": list(zip(overview["experts"], expert_settings)),
        "chart": weights_svg(names, rounds, weights),
        "decisions": decisions,
        "tried": tried,
        "tried_votes": list(zip(names, tried.votes)) if tried else [],
        "error": error,
        "live": request.method == "GET" and request.GET.get("live") == "1",
    }
    return render(request, "frontend/moderation.html", context)

