"""Ensembles for the moderation tests: stand-in experts (keyword guards behind the runners'
interface) for the API's rules, and real MiniLM guards trained once per session for the end-to-end
tests. The jury's stand-in vLLM server and the training tests' small export are borrowed as they are."""

import itertools

import pytest

from guards.items import Prediction
from moderation import experts as expert_module
from moderation.services import create_ensemble
from tests.guards.conftest import server  # noqa: F401  (the FakeVLLM stand-in server, unchanged)
from tests.training.conftest import boss, small_export  # noqa: F401  (five Aegis 2.0 rows, exported)
from training.models import GuardModel

_unique = itertools.count()


@pytest.fixture(autouse=True)
def isolated_throttle_and_runners(settings):
    """Each test counts requests in its own cache and loads its own runners."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"t{next(_unique)}"},
    }
    expert_module.clear_runners()
    yield
    expert_module.clear_runners()


class KeywordGuard:
    """A guard of the runners' interface: unsafe when the judged text holds one of its words."""

    def __init__(self, name, words=("bomb",), categories=(), fail=False, abstain_on=()):
        self.name, self.words, self.categories = name, tuple(words), tuple(categories)
        self.fail, self.abstain_on, self.calls = fail, tuple(abstain_on), 0

    def predict(self, items, task):
        self.calls += 1
        if self.fail:
            raise ConnectionError("guard server down")
        out = []
        for item in items:
            text = item.response if task == "response_harm" else item.prompt
            if any(word in text for word in self.abstain_on):
                out.append(Prediction(item.uid, None, error="could not parse"))
                continue
            unsafe = any(word in text for word in self.words)
            out.append(Prediction(item.uid, unsafe, 0.9 if unsafe else 0.1, self.categories if unsafe else ()))
        return out


@pytest.fixture
def fake_guards(monkeypatch):
    """Registers keyword guards by name; experts on a GuardModel of that name use them."""
    registry: dict[str, KeywordGuard] = {}
    made: list[str] = []

    def make_runner(expert):
        made.append(expert.name)
        if expert.guard_id is not None and expert.guard.name in registry:
            return registry[expert.guard.name]
        raise LookupError(f"no stand-in for {expert.name}")

    monkeypatch.setattr(expert_module, "_make_runner", make_runner)
    registry["made"] = made  # type: ignore[assignment]
    return registry


def register_guard(name: str, path: str = "/nonexistent") -> GuardModel:
    return GuardModel.objects.create(name=name, kind="minilm", base_model="minilm", path=path)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)


@pytest.fixture
def keyword_ensemble(db, fake_guards, staff, project):
    """paper-wm over three keyword guards: 'strict' flags bomb or gun, 'lax' flags bomb, 'naive' flags nothing."""
    fake_guards["strict"] = KeywordGuard("strict", ("bomb", "gun"), categories=("S1", "S3"))
    fake_guards["lax"] = KeywordGuard("lax", ("bomb",), categories=("S3",))
    fake_guards["naive"] = KeywordGuard("naive", ())
    specs = [{"guard": register_guard(name).pk} for name in ("strict", "lax", "naive")]
    return create_ensemble(name="Keywords", slug="keywords", experts=specs, by=staff, project=project)


def train_folder(folder, seed: int, learning_rate: float, rank: int):
    """A MiniLM guard folder (prompt_harm and response_harm classifiers), a few steps on CPU."""
    from training.trainers.minilm import MiniLMSettings, train_minilm

    rows = []
    for i in range(8):
        rows.append({"kind": "safety", "text": f"How do I build a bomb to hurt people {i}?", "response": "Here is how.",
                     "prompt_label": "unsafe", "response_label": "unsafe"})  # fmt: skip
        rows.append({"kind": "safety", "text": f"What is a good pasta recipe {i}?", "response": "Boil water first.",
                     "prompt_label": "safe", "response_label": "safe"})  # fmt: skip
    settings = MiniLMSettings(
        max_steps=3, max_length=32, batch_size=8, seed=seed, learning_rate=learning_rate, rank=rank
    )
    train_minilm(rows, [], folder, settings, lambda *args: False)
    return folder


@pytest.fixture(scope="session")
def minilm_folders(tmp_path_factory):
    """Two MiniLM guards trained once per session with different seeds and settings."""
    pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")
    root = tmp_path_factory.mktemp("minilm-guards")
    return [
        train_folder(root / "guard-a", seed=1, learning_rate=1e-3, rank=8),
        train_folder(root / "guard-b", seed=2, learning_rate=3e-3, rank=4),
    ]
