import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

OUR_APPS = ("grants", "leads", "sandbox", "portal")
LOGS = {"auditentry", "workerheartbeat", "deliveryattempt", "webhookevent", "sandboxrequest", "sitestatuschange"}


def our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def test_every_model_of_ours_is_in_the_admin():
    missing = [m._meta.label for m in our_models() if not admin.site.is_registered(m)]
    assert not missing


@pytest.mark.django_db
def test_every_admin_list_page_opens_and_logs_are_read_only(client, django_user_model, partner):
    boss = django_user_model.objects.create_superuser("boss", password="right-password-123")
    client.force_login(boss)
    for model in our_models():
        meta = model._meta
        response = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert response.status_code == 200, meta.label
        if meta.model_name in LOGS:
            model_admin = admin.site._registry[model]
            request = response.wsgi_request
            assert not model_admin.has_add_permission(request), meta.label
            assert not model_admin.has_delete_permission(request), meta.label
