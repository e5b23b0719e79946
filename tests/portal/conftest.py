import pytest

from grants.models import Partner


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    # Pages render {% static %}; the manifest storage would need `collectstatic` to have run first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-123")


@pytest.fixture
def acme_staff(django_user_model, partner: Partner):
    user = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    partner.staff.add(user)
    return user


@pytest.fixture
def acme_client(client, acme_staff):
    client.force_login(acme_staff)
    return client


@pytest.fixture
def root_client(client, superuser):
    client.force_login(superuser)
    return client
