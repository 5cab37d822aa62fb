"""End to end with CPU experts: a MiniLM guard trained through the training services on a real
export, two more MiniLM guards trained with other seeds and settings, and a juror on the jury's
stand-in vLLM server; decisions through the token API, feedback, a restart, and the simulation
command over the same guards (computed once, saved, read back)."""

import json

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from jury.models import Juror
from moderation import experts as expert_module
from moderation import online, selectors, services
from moderation.models import Decision
from training.models import GuardModel
from training.services import build_blend, run_training, start_training_run

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")

ANSWER = '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence, Threat"}'


@pytest.fixture
def cpu_experts(boss, small_export, minilm_folders, server, project):
    """Three MiniLM guards (one trained here through the services) and a juror."""
    from training.trainers.minilm import minilm_path

    blend = build_blend(small_export, by=boss)
    run = run_training(start_training_run(blend, by=boss, kind="minilm", config={"max_steps": 3, "max_length": 32}))
    assert run.status == "succeeded", run.error
    trained = GuardModel.objects.get(run=run)
    others = [
        GuardModel.objects.create(name=f"minilm-{folder.name}", kind="minilm", base_model=minilm_path(), path=folder)
        for folder in minilm_folders
    ]
    server.script["answer"] = ANSWER
    juror = Juror.objects.create(project=project, name="judge", model="juror-1", prompt_format="nemoguard",
                                 base_url=f"http://127.0.0.1:{server.server_port}/v1", judges_prompts=True)  # fmt: skip
    return [trained, *others], juror


@pytest.mark.once
@pytest.mark.django_db(transaction=True)
def test_moderation_with_cpu_guards(client, boss, cpu_experts, project, monkeypatch, tmp_path, capsys):
    from guards.loading import MiniLMGuard

    guards, juror = cpu_experts
    loads = []
    original = MiniLMGuard.__init__

    def counting(self, folder, *args, **kwargs):
        loads.append(str(folder))
        original(self, folder, *args, **kwargs)

    monkeypatch.setattr(MiniLMGuard, "__init__", counting)
    specs = [{"guard": guard.pk} for guard in guards] + [{"juror": juror.pk}]
    ensemble = services.create_ensemble(name="CPU", slug="cpu", experts=specs, by=boss, project=project)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=boss).key}"

    def ask(prompt, response=None):
        body = {"prompt": prompt, **({"response": response} if response is not None else {})}
        answer = client.post("/api/moderation/cpu/", body, content_type="application/json")
        assert answer.status_code == 200, answer.content
        return answer.json()

    first = ask("How do I hurt someone?")
    assert [v["expert"] for v in first["votes"]] == [g.name for g in guards] + ["juror:judge"]
    assert all(v["vote"] in ("safe", "unsafe") for v in first["votes"]), first["votes"]
    assert all(0.0 <= v["score"] <= 1.0 for v in first["votes"][:3]) and first["votes"][3]["score"] is None
    assert first["votes"][3]["categories"] == ["S1", "S11"]  # the juror names Violence and Threat
    if first["decision"] == "unsafe":
        assert set(first["categories"]) <= {"S1", "S11"} and first["categories"]
    assert sum(first["weights"].values()) == pytest.approx(1.0)
    with_response = ask("How do I hurt someone?", "Here is how.")
    assert all(v["vote"] is not None for v in with_response["votes"])
    assert len(loads) == 6  # three guards, prompt and response classifiers each, loaded once
    decisions = [first, with_response] + [ask(f"What is a good pasta recipe {i}?") for i in range(4)]
    assert len(loads) == 6  # and never again
    truths = ["unsafe", "unsafe", "safe", "safe", "safe", "safe"]
    for decision, truth in zip(decisions, truths):
        url = f"/api/moderation/decisions/{decision['decision_id']}/feedback/"
        assert client.post(url, {"label": truth}, content_type="application/json").status_code == 200
    state = selectors.current_state(ensemble)
    assert state.rounds == 6 and selectors.replay_history(ensemble) == state
    votes = [Decision.objects.get(pk=d["decision_id"]).vote_vector for d in decisions]
    mistakes = [sum(v[i] != (t == "unsafe") for v, t in zip(votes, truths)) for i in range(4)]
    assert list(state.losses) == mistakes and mistakes[3] == 4  # the stand-in juror always says unsafe
    assert online.weights(state).tolist() == pytest.approx([0.5**m / sum(0.5**k for k in mistakes) for m in mistakes])

    # a restart: nothing in memory; the next decision uses the stored weights and reloads models
    expert_module.clear_runners()
    after = ask("How do I hurt someone?")
    assert after["round"] == 6 and list(after["weights"].values()) == pytest.approx(online.weights(state).tolist())
    assert len(loads) == 9  # a prompt-only request needs only the three prompt classifiers, loaded lazily
    client.force_login(boss)
    page = client.get("/moderation/cpu/").content.decode()
    assert "juror:judge" in page and "<svg" in page and "What is a good pasta recipe 3?" in page

    # the simulation over the same guards: predictions computed once, saved, and read back
    saved = tmp_path / "predictions"
    ids = [str(g.pk) for g in guards]
    call_command(
        "simulate_ensemble",
        benchmark="aegis1_test",
        guard=ids,
        guardreasoner=True,
        algorithm="paper-wm",
        seed=2,
        save_predictions=str(saved),
        plot=str(tmp_path / "sim.png"),
        json=str(tmp_path / "a.json"),
    )
    computed = json.loads((tmp_path / "a.json").read_text())
    assert [e["name"] for e in computed["experts"]] == ["guardreasoner-8B", *[g.name for g in guards]]
    assert computed["rounds"] == 359 and all(b["held"] for b in computed["bounds"].values())
    files = [f"{g.name}={saved / (g.name + '.jsonl')}@llama_guard" for g in guards]
    call_command("simulate_ensemble", benchmark="aegis1_test", predictions=files, guardreasoner=True,
                 algorithm="paper-wm", seed=2, json=str(tmp_path / "b.json"))  # fmt: skip
    replayed = json.loads((tmp_path / "b.json").read_text())
    assert replayed["experts"] == computed["experts"] and replayed["ensemble"] == computed["ensemble"]
    assert (tmp_path / "sim.png").stat().st_size > 10_000
    assert "regret:" in capsys.readouterr().out
