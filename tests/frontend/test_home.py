import pytest

from annotation.models import Membership
from annotation.services import create_project


@pytest.mark.django_db
def test_home_lists_my_projects_escaped_with_my_actions(client, django_user_model):
    project = create_project(name="<b>Hate speech</b> batch", slug="hate")
    create_project(name="Someone else's", slug="other")
    ann = django_user_model.objects.create_user("ann", password="pw-ann-12345")
    Membership.objects.create(project=project, user=ann, role="annotator")
    client.force_login(ann)
    body = client.get("/").content.decode()
    assert "&lt;b&gt;Hate speech&lt;/b&gt; batch" in body and "<b>Hate" not in body
    assert "Someone else" not in body
    assert f'href="/projects/{project.pk}/label/"' in body
    assert f'href="/projects/{project.pk}/dashboard/"' not in body and 'href="/admin/"' not in body


@pytest.mark.django_db
def test_pages_need_the_right_role(client, django_user_model):
    project = create_project(name="P", slug="p")
    ann = django_user_model.objects.create_user("ann", password="pw-ann-12345")
    assert client.get(f"/projects/{project.pk}/label/").status_code == 302  # to the login page
    client.force_login(ann)
    assert client.get(f"/projects/{project.pk}/label/").status_code == 403
    Membership.objects.create(project=project, user=ann, role="annotator")
    assert client.get(f"/projects/{project.pk}/label/").status_code == 200
    assert client.get(f"/projects/{project.pk}/dashboard/").status_code == 403
    Membership.objects.create(project=project, user=ann, role="admin")
    assert client.get(f"/projects/{project.pk}/dashboard/").status_code == 200


def test_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
