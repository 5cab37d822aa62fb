"""The moderation page: each expert's settings readable, and why an expert abstained."""

import pytest

from moderation import services
from moderation.models import Expert

pytestmark = pytest.mark.django_db


def test_moderation_page_says_why_an_expert_abstained(client, staff, keyword_ensemble, fake_guards):
    fake_guards["strict"].fail = True  # its server is down: it abstains with the error
    decision = services.moderate(keyword_ensemble, "a bomb <script>x</script>", None)
    reasons = [vote["error"] for vote in decision.votes if vote["vote"] is None]
    assert reasons and "ConnectionError: guard server down" in reasons[0]
    Expert.objects.filter(name="strict").update(options={"threshold": 0.7, "base_url": "http://guard:8000/v1"})
    client.force_login(staff)
    page = client.get("/moderation/keywords/").content.decode()
    assert "<dt>threshold</dt><dd>0.7</dd>" in page and "<dt>server</dt><dd>http://guard:8000/v1</dd>" in page
    assert "abstained: ConnectionError: guard server down" in page
    assert "<script>x" not in page
    tried = client.post("/moderation/keywords/", {"prompt": "a bomb", "response": ""}).content.decode()
    assert "strict: abstained (ConnectionError: guard server down)" in tried
