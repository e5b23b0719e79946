import pytest
from django.urls import reverse

from core import health


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "workers_last_seen": None}


@pytest.mark.django_db
def test_healthz_answers_503_naming_an_unreachable_broker(client):
    from partner_portal.celery import app

    configured = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_write_url = configured
    assert response.status_code == 503
    assert "broker" in response.json()["problems"]
    assert health.database_problem() is None


@pytest.mark.django_db
def test_pages_require_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_user_out(client, django_user_model, settings):
    django_user_model.objects.create_user("sam", password="right-password-123", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "sam", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "sam", "password": "right-password-123"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_staff_log_in_and_see_only_their_partners(client, django_user_model, partner, other_partner):
    user = django_user_model.objects.create_user("kim", password="right-password-123", is_staff=True)
    partner.staff.add(user)
    response = client.post(reverse("login"), {"username": "kim", "password": "right-password-123"}, follow=True)
    assert response.status_code == 200
    assert b"Acme Leads" in response.content
    assert b"Other Co" not in response.content
