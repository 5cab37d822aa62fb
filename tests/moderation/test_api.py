"""The moderation API with stand-in experts: auth, the decision's shape, categories, abstentions,
rate limits, feedback rules and weights, state that survives a restart, the final-label hook."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from annotation.labels import LabelSource
from annotation.models import FinalLabel, Membership, Sample
from moderation import experts as expert_module
from moderation import online, selectors, services
from moderation.models import Decision, EnsembleState, WeightHistory
from moderation.receivers import queue_final_label_feedback
from moderation.tasks import feedback_from_final_label_task
from tests.core.test_broker_down import broker_down  # noqa: F401  (the task broker refusing connections)
from tests.moderation.conftest import KeywordGuard, register_guard

URL = "/api/moderation/keywords/"


def token_client(client, user):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
    return client


def ask(client, prompt, response=None, url=URL):
    body = {"prompt": prompt} if response is None else {"prompt": prompt, "response": response}
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def api(client, staff, keyword_ensemble):
    return token_client(client, staff)


def test_auth_required(client, keyword_ensemble, staff):
    answer = ask(client, "hello")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Token"
    assert client.post("/api/moderation/decisions/1/feedback/", {"label": "safe"}).status_code == 401
    assert client.get("/api/moderation/ensembles/").status_code == 401
    assert ask(token_client(client, staff), "hello").status_code == 200
    client.defaults["HTTP_AUTHORIZATION"] = "Token not-a-token"
    assert ask(client, "hello").status_code == 401
    # a token from the project's token endpoint works
    client.defaults.pop("HTTP_AUTHORIZATION")
    token = client.post("/api/auth/token/", {"username": "staff", "password": "pw-staff-123"}).json()["token"]
    assert ask(client, "hello", url=URL).status_code == 401
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token}"
    assert ask(client, "hello").status_code == 200


def test_decision_shape_votes_weights_and_categories(api):
    answer = ask(api, "how do I build a bomb")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    # paper-wm, equal weights: strict and lax say unsafe (2 of 3)
    assert body["decision"] == "unsafe" and body["p_unsafe"] == 1.0
    assert body["weights"] == pytest.approx({"strict": 1 / 3, "lax": 1 / 3, "naive": 1 / 3})
    assert [(v["expert"], v["vote"]) for v in body["votes"]] == [("strict", "unsafe"), ("lax", "unsafe"),
                                                                 ("naive", "safe")]  # fmt: skip
    assert body["categories"] == ["S3", "S1"]  # S3 named by both unsafe voters, S1 by one
    decision = Decision.objects.get(pk=body["decision_id"])
    assert decision.prompt == "how do I build a bomb" and decision.response is None
    assert decision.vote_vector == [1, 1, 0] and decision.latency_ms > 0 and decision.state_round == 0
    safe = ask(api, "a gun in a museum").json()  # strict alone: 1 of 3, safe
    assert safe["decision"] == "safe" and safe["categories"] == []
    assert ask(api, "").status_code == 400
    assert ask(api, "x", url="/api/moderation/nope/").status_code == 404


def test_failing_and_abstaining_experts(api, fake_guards, staff, project):
    fake_guards["down"] = KeywordGuard("down", fail=True)
    fake_guards["prompt-only"] = KeywordGuard("prompt-only", ("bomb",))
    specs = [{"guard": register_guard("down").pk}, {"guard": register_guard("prompt-only").pk, "task": "prompt"},
             {"guard": register_guard("responses").pk, "task": "response"}]  # fmt: skip
    fake_guards["responses"] = KeywordGuard("responses", ("here is how",), abstain_on=("gibberish",))
    services.create_ensemble(name="Mixed", slug="mixed", experts=specs, by=staff)
    votes = ask(api, "build a bomb", url="/api/moderation/mixed/").json()["votes"]
    assert votes[0]["vote"] is None and "ConnectionError: guard server down" in votes[0]["error"]
    assert votes[1]["vote"] == "unsafe"
    assert votes[2]["vote"] is None and "has none" in votes[2]["error"]  # a response expert, no response
    both = ask(api, "build a bomb", "here is how", url="/api/moderation/mixed/").json()
    assert [v["vote"] for v in both["votes"]] == [None, "unsafe", "unsafe"] and both["decision"] == "unsafe"
    # the prompt expert judged the prompt, the response expert the response
    assert [v["vote"] for v in ask(api, "hi", "here is how", url="/api/moderation/mixed/").json()["votes"]] == [
        None, "safe", "unsafe"]  # fmt: skip
    parse = ask(api, "hi", "gibberish", url="/api/moderation/mixed/").json()["votes"][2]
    assert parse["vote"] is None and parse["error"] == "could not parse"
    # nobody votes: unsafe (safety first)
    services.create_ensemble(name="Down", slug="down", experts=[{"guard": fake_guards_pk(fake_guards)}], by=staff)
    nobody = ask(api, "hi", url="/api/moderation/down/").json()
    assert nobody["votes"][0]["vote"] is None and nobody["decision"] == "unsafe" and nobody["p_unsafe"] == 1.0


def fake_guards_pk(fake_guards):
    from training.models import GuardModel

    return GuardModel.objects.get(name="down").pk


def test_runners_load_once_per_process(api, fake_guards):
    for _ in range(3):
        ask(api, "a bomb")
    assert sorted(fake_guards["made"]) == ["lax", "naive", "strict"]
    assert fake_guards["strict"].calls == 3
    expert_module.clear_runners()  # as a new process would
    ask(api, "a bomb")
    assert len(fake_guards["made"]) == 6


def test_rate_limit_answers_429(client, settings, keyword_ensemble, staff, django_user_model):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"moderation": "3/min"}}
    api = token_client(client, staff)
    assert [ask(api, f"hello {i}").status_code for i in range(4)] == [200, 200, 200, 429]
    limited = ask(api, "again")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert Decision.objects.count() == 3
    assert api.get(URL).status_code == 200  # reading the state is not counted
    other = django_user_model.objects.create_user("service-2")
    assert ask(token_client(client, other), "hello").status_code == 200  # counted per account


def test_feedback_rules(client, api, keyword_ensemble, django_user_model, project):
    decision_id = ask(api, "a gun").json()["decision_id"]
    url = f"/api/moderation/decisions/{decision_id}/feedback/"
    annotator = django_user_model.objects.create_user("annotator")
    Membership.objects.create(project=project, user=annotator, role="annotator")
    reviewer = django_user_model.objects.create_user("reviewer")
    Membership.objects.create(project=project, user=reviewer, role="reviewer")
    outsider = token_client(client.__class__(), annotator)
    assert outsider.post(url, {"label": "unsafe"}, content_type="application/json").status_code == 403
    assert outsider.get(URL).status_code == 403 and outsider.get(f"{URL}decisions/").status_code == 403
    assert ask(outsider, "a gun").status_code == 200  # any account may ask
    as_reviewer = token_client(client.__class__(), reviewer)
    assert as_reviewer.post(url, {"label": "maybe"}, content_type="application/json").status_code == 400
    answer = as_reviewer.post(url, {"label": "needs caution"}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["label"] == "unsafe" and answer.json()["round"] == 1  # the project's policy: unsafe
    again = as_reviewer.post(url, {"label": "safe"}, content_type="application/json")
    assert again.status_code == 409 and "feedback already" in again.json()["detail"]
    assert api.post("/api/moderation/decisions/999999/feedback/", {"label": "safe"},
                    content_type="application/json").status_code == 404  # fmt: skip
    decision = Decision.objects.get(pk=decision_id)
    assert (decision.feedback_label, decision.feedback_source, decision.feedback_by) == ("unsafe", "reviewer", reviewer)
    log = as_reviewer.get(f"{URL}decisions/").json()
    assert log["count"] == 2 and log["results"][1]["prompt"] == "a gun" and log["results"][1]["feedback"] == "unsafe"
    assert as_reviewer.get(f"{URL}decisions/?pending=1").json()["count"] == 1


def test_feedback_moves_the_weights(api, keyword_ensemble):
    # 'strict' is right about guns, 'lax' and 'naive' miss them: after two rounds strict leads
    for _ in range(2):
        decision = ask(api, "a gun").json()
        assert api.post(f"/api/moderation/decisions/{decision['decision_id']}/feedback/", {"label": "unsafe"},
                        content_type="application/json").status_code == 200  # fmt: skip
    state = selectors.current_state(keyword_ensemble)
    assert state.rounds == 2 and state.losses == (0.0, 2.0, 2.0)
    weights = online.weights(state)
    assert weights[0] == pytest.approx(1 / (1 + 2 * 0.25))  # (1 − η)^2 = 0.25 for the others
    now = ask(api, "a gun").json()
    assert now["decision"] == "unsafe" and now["round"] == 2 and now["categories"] == ["S1", "S3"]
    overview = api.get(URL).json()
    assert overview["rounds"] == 2 and [e["loss"] for e in overview["experts"]] == [0.0, 2.0, 2.0]
    history = api.get(f"{URL}history/").json()["results"]
    assert [(h["round"], h["truth"], h["predicted"]) for h in history] == [(1, 1, 0), (2, 1, 1)]  # a tie goes to unsafe
    assert history[-1]["weights"] == pytest.approx(list(weights))
    figures = selectors.overview(keyword_ensemble)
    assert [e.mistakes for e in figures["experts"]] == [0, 2, 2] and figures["mistakes"] == 1
    assert figures["regret"] == 1 and figures["expected_mistakes"] == 1.0
    assert figures["disagreement"] == 1.0 and figures["contested"] == 3  # strict alone flags guns
    assert [e.agreement for e in figures["experts"]] == [2 / 3, 1 / 3, 1 / 3]  # served: safe, unsafe, unsafe


def test_state_survives_a_restart(api, keyword_ensemble):
    """Feedback, then forget everything in memory; the state reloaded from the database repeats an
    uninterrupted run (the same losses, weights and next decisions)."""
    rounds = [("a gun", 1), ("a bomb", 1), ("a museum", 0), ("a gun show", 0), ("gun", 1)]
    memory = online.new_state("paper-wm", 3)
    for text, truth in rounds:
        decision = ask(api, text).json()
        api.post(f"/api/moderation/decisions/{decision['decision_id']}/feedback/",
                 {"label": "unsafe" if truth else "safe"}, content_type="application/json")  # fmt: skip
        memory = online.update(memory, Decision.objects.get(pk=decision["decision_id"]).vote_vector, truth)
    expert_module.clear_runners()
    stored = EnsembleState.objects.get(ensemble=keyword_ensemble)
    restored = online.OnlineState.from_dict(stored.state)
    assert restored == memory and stored.rounds == 5
    assert selectors.replay_history(keyword_ensemble) == restored
    assert list(WeightHistory.objects.filter(ensemble=keyword_ensemble).values_list("round", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
    ]
    after = ask(api, "a gun").json()
    assert after["weights"] == pytest.approx(dict(zip(["strict", "lax", "naive"], online.weights(memory))))
    assert after["decision"] == ("unsafe" if online.predict(memory, [1, 0, 0]).decision else "safe")


def test_randomised_ensembles_draw_per_decision(api, fake_guards, staff):
    fake_guards["yes"], fake_guards["no"] = KeywordGuard("yes", ("x",)), KeywordGuard("no", ())
    specs = [{"guard": register_guard("yes").pk}, {"guard": register_guard("no").pk}]
    services.create_ensemble(name="Hedge", slug="hedge", experts=specs, by=staff, algorithm="hedge", seed=7)
    answers = [ask(api, "x", url="/api/moderation/hedge/").json() for _ in range(40)]
    assert {a["p_unsafe"] for a in answers} == {0.5}
    decisions = {a["decision"] for a in answers}
    assert decisions == {"safe", "unsafe"}  # independent draws, not one per state round
    for answer in answers[:3]:
        decision = Decision.objects.get(pk=answer["decision_id"])
        state = online.OnlineState.from_dict({**EnsembleState.objects.get(ensemble__slug="hedge").state,
                                              "seed": decision.draw_seed})  # fmt: skip
        assert online.predict(state, decision.vote_vector).decision == (decision.decision == "unsafe")


def test_paused_and_oversized(api, keyword_ensemble, settings):
    keyword_ensemble.active = False
    keyword_ensemble.save()
    assert ask(api, "hi").status_code == 409
    keyword_ensemble.active = True
    keyword_ensemble.save()
    assert ask(api, "x" * (settings.AEGIS_MODERATION_MAX_CHARS + 1)).status_code == 400


def test_create_ensembles_through_the_api(client, api, staff, project, django_user_model):
    guard = register_guard("g1")
    body = {"name": "API", "slug": "api-made", "algorithm": "paper-fpl", "seed": 3,
            "experts": [{"guard": guard.pk, "name": "first"}, {"guard": guard.pk, "name": "second", "task": "prompt",
                                                                "options": {"threshold": 0.7}}]}  # fmt: skip
    made = api.post("/api/moderation/ensembles/", body, content_type="application/json")
    assert made.status_code == 201, made.content
    assert made.json()["eta"] == 0.26 and [e["weight"] for e in made.json()["experts"]] == [0.5, 0.5]
    assert api.post("/api/moderation/ensembles/", body, content_type="application/json").status_code == 400
    for change, message in [
        ({"slug": "decisions"}, "reserved"),
        ({"slug": "x1", "algorithm": "wm"}, "wm needs η"),
        ({"slug": "x2", "algorithm": "paper-wm", "eta": 0.3}, "the preset fixes η = 0.5"),
        ({"slug": "x3", "experts": []}, "at least one expert"),
        ({"slug": "x4", "experts": [{"guard": guard.pk, "options": {"colour": 1}}]}, "unknown options colour"),
        ({"slug": "x5", "experts": [{"guard": guard.pk}, {"guard": guard.pk}]}, "names must differ"),
        ({"slug": "x6", "experts": [{"juror": 12345}]}, "no juror 12345"),
    ]:
        answer = api.post("/api/moderation/ensembles/", {**body, **change}, content_type="application/json")
        assert answer.status_code == 400 and message in str(answer.json()), (change, answer.content)
    nobody = token_client(client.__class__(), django_user_model.objects.create_user("nobody"))
    assert nobody.post("/api/moderation/ensembles/", {**body, "slug": "n1"},
                       content_type="application/json").status_code == 403  # fmt: skip
    assert nobody.get("/api/moderation/ensembles/").json() == []
    assert {e["slug"] for e in api.get("/api/moderation/ensembles/").json()} == {"keywords", "api-made"}


def test_final_labels_feed_the_ensemble(api, keyword_ensemble, project):
    prompt_only = ask(api, "a gun").json()["decision_id"]
    with_response = ask(api, "a gun", "sure, here").json()["decision_id"]
    other = ask(api, "unrelated").json()["decision_id"]
    sample = Sample.objects.create(project=project, uid="s1", turns=[], prompt="a gun", response="sure, here",
                                   source_name="t", content_hash="h1")  # fmt: skip
    FinalLabel.objects.create(sample=sample, prompt_label="unsafe", prompt_label_source=LabelSource.LLM_JURY,
                              response_label="safe", response_label_source=LabelSource.HUMAN)  # fmt: skip
    applied = services.feedback_from_final_label(sample)
    # the jury's prompt label is not taken as truth; the human response label is
    assert [h.decision_id for h in applied] == [with_response] and applied[0].truth == 0
    FinalLabel.objects.filter(sample=sample).update(prompt_label_source=LabelSource.ADJUDICATED)
    call_command("moderation_feedback", project=project.slug)
    decisions = {d.pk: d for d in Decision.objects.all()}
    assert decisions[prompt_only].feedback_label == "unsafe" and decisions[prompt_only].feedback_source == "final_label"
    assert decisions[prompt_only].feedback_sample == sample and decisions[other].feedback_label is None
    assert services.feedback_from_final_label(sample) == []  # nothing pending any more
    assert feedback_from_final_label_task.apply((sample.pk,)).get() == 0  # the task, run here
    assert feedback_from_final_label_task.apply((999999,)).get() == 0
    assert selectors.current_state(keyword_ensemble).rounds == 2


def test_a_final_label_feeds_the_ensemble_while_the_broker_is_down(api, keyword_ensemble, project, broker_down):  # noqa: F811
    decision = ask(api, "a gun").json()["decision_id"]
    sample = Sample.objects.create(project=project, uid="s1", turns=[], prompt="a gun", response=None,
                                   source_name="t", content_hash="h1")  # fmt: skip
    FinalLabel.objects.create(sample=sample, prompt_label="unsafe", prompt_label_source=LabelSource.HUMAN)
    queue_final_label_feedback(sender=FinalLabel, sample_id=sample.pk, project_id=project.pk)
    assert Decision.objects.get(pk=decision).feedback_label == "unsafe"  # applied here, not lost


def test_pages_escape_text_and_take_feedback(client, staff, keyword_ensemble, django_user_model, fake_guards):
    client.force_login(staff)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    decision = services.moderate(keyword_ensemble, hostile + " bomb", "<b>bold</b>")
    assert "Online moderation" in client.get("/").content.decode()
    listing = client.get("/moderation/").content.decode()
    assert "/moderation/keywords/" in listing and "Keywords" in listing
    page = client.get("/moderation/keywords/").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "<svg" in page and "polyline" in page
    assert client.post("/moderation/keywords/", {"decision": decision.pk, "label": "unsafe"}).status_code == 302
    assert Decision.objects.get(pk=decision.pk).feedback_label == "unsafe"
    tried = client.post("/moderation/keywords/", {"prompt": "a bomb", "response": ""}).content.decode()
    assert "Decision" in tried and "unsafe" in tried
    again = client.post("/moderation/keywords/", {"decision": decision.pk, "label": "safe"}).content.decode()
    assert "feedback already" in again
    client.force_login(django_user_model.objects.create_user("stranger"))
    assert client.get("/moderation/keywords/").status_code == 403
    assert "No ensembles you review" in client.get("/moderation/").content.decode()


def test_admin_makes_an_ensemble_and_checks_its_history(client, django_user_model, fake_guards):
    root = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(root)
    guards = [register_guard("a1"), register_guard("a2")]
    fake_guards["a1"], fake_guards["a2"] = KeywordGuard("a1", ("bomb",)), KeywordGuard("a2", ())
    form = {
        "name": "Admin made", "slug": "admin-made", "algorithm": "paper-wm", "seed": "0", "active": "on",
        "experts-TOTAL_FORMS": "2", "experts-INITIAL_FORMS": "0", "experts-MIN_NUM_FORMS": "0",
        "experts-MAX_NUM_FORMS": "1000",
        "experts-0-position": "0", "experts-0-name": "first", "experts-0-guard": guards[0].pk, "experts-0-task": "auto",
        "experts-0-options": "{}",
        "experts-1-position": "1", "experts-1-name": "second", "experts-1-guard": guards[1].pk,
        "experts-1-task": "prompt", "experts-1-options": "{}",
    }  # fmt: skip
    answer = client.post("/admin/moderation/ensemble/add/", form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    from moderation.models import Ensemble

    made = Ensemble.objects.get(slug="admin-made")
    assert selectors.current_state(made) == online.new_state("paper-wm", 2)
    decision = services.moderate(made, "a bomb")
    services.record_feedback(decision.pk, "unsafe", by=root)
    changelist = client.post(
        "/admin/moderation/ensemble/", {"action": "check_history", "_selected_action": [made.pk]}, follow=True
    )
    assert "replaying 1 rounds matches the state" in changelist.content.decode()
    page = client.get(f"/admin/moderation/ensemble/{made.pk}/change/").content.decode()
    assert 'name="experts-0-name"' not in page  # experts are fixed once the ensemble has decided
    for url in (
        "/admin/moderation/decision/",
        "/admin/moderation/weighthistory/",
        f"/admin/moderation/decision/{decision.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url


def test_an_adjudicated_label_reaches_the_ensemble_through_the_signal(
    api, keyword_ensemble, project, staff, django_capture_on_commit_callbacks
):
    from annotation.services import adjudicate
    from config.celery import app

    decision = ask(api, "a gun").json()["decision_id"]
    sample = Sample.objects.create(project=project, uid="s2", turns=[{"role": "user", "content": "a gun"}],
                                   prompt="a gun", source_name="t", content_hash="h2")  # fmt: skip
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the queued feedback task runs here, inside this test's transaction
    try:
        with django_capture_on_commit_callbacks(execute=True):
            adjudicate(project, sample.pk, staff, prompt_label="unsafe", categories=["S5"])
    finally:
        app.conf.task_always_eager = eager
    assert Decision.objects.get(pk=decision).feedback_label == "unsafe"
    assert selectors.current_state(keyword_ensemble).rounds == 1
