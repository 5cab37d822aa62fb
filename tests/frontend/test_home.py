import pytest


@pytest.mark.django_db
def test_home_lists_projects_escaped(client, django_user_model):
    from annotation.services import create_project

    create_project(name="<b>Hate speech</b> batch", slug="hate")
    client.force_login(django_user_model.objects.create_user("ann", password="pw-ann-12345"))
    body = client.get("/").content.decode()
    assert "&lt;b&gt;Hate speech&lt;/b&gt; batch" in body and "<b>Hate" not in body
    assert "Aegis 2.0 v1" in body
    assert 'href="/admin/"' not in body
