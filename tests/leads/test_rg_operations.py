"""The table of RG operations (leads.rg_operations) and what is built from it: the stored
choices, the creating operations, body validation and the push API's paths."""

import pytest
from django.urls import resolve, reverse

from leads.models import CREATING_OPERATIONS, Operation
from leads.rg_operations import OPERATIONS
from leads.services import payload_validate
from leads.validation import PayloadError

SITE = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
LEAD = "2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f"
VIEWED = {"type": "property_viewed", "property": {"mls": "12345"}}


def test_every_stored_operation_has_a_row_and_every_row_is_a_stored_operation():
    stored = ["create_lead", "update_lead", "add_activities", "potential_seller", "update_lead_v2"]

    assert Operation.values == stored
    assert list(OPERATIONS) == stored
    assert [op.name for op in OPERATIONS.values()] == stored


def test_the_creates_and_the_potential_seller_leads_are_the_creating_operations():
    assert CREATING_OPERATIONS == (Operation.CREATE_LEAD, Operation.POTENTIAL_SELLER)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("create_lead", {"source": "Zillow", "email": "jack@gmail.com"}),
        ("update_lead", {"notes": ""}),
        ("add_activities", [{"type": "note", "description": "hi"}]),
        ("potential_seller", {"activities": [VIEWED]}),
        ("update_lead_v2", {"email": ""}),
    ],
)
def test_each_operation_accepts_its_own_body_and_returns_a_copy(operation, body):
    checked = payload_validate(operation, body)

    assert checked == body and checked is not body


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        ("create_lead", {"notes": ""}, "Field 'source' is required."),
        ("update_lead", {"email": "nope"}, "Field 'email' is not a valid email address."),
        ("add_activities", {"type": "note"}, "Activities must be a list of activities."),
        (
            "potential_seller",
            {"activities": []},
            "Potential seller lead needs a 'property_viewed' activity with a property.",
        ),
        ("update_lead_v2", {"activities": ""}, "Field 'activities' must be a list of activities."),
    ],
)
def test_each_operation_refuses_what_rg_would_refuse_for_it(operation, body, message):
    with pytest.raises(PayloadError) as refused:
        payload_validate(operation, body)

    assert (refused.value.status, refused.value.message) == (422, message)


@pytest.mark.parametrize("operation", ["list_users", "delete_lead"])
def test_a_body_for_an_operation_not_in_the_table_is_a_programming_error(operation):
    with pytest.raises(ValueError, match="Unknown Real Geeks operation"):
        payload_validate(operation, {})


# The push API under RG's paths (REALGEEKS_API.md section 1), answering as RG does.
PUSH_PATHS = [
    ("create_lead", "push-create-lead", f"/rest/sites/{SITE}/leads", "post", 201),
    ("update_lead", "push-update-lead", f"/rest/sites/{SITE}/leads/{LEAD}", "patch", 200),
    ("add_activities", "push-add-activities", f"/rest/sites/{SITE}/leads/{LEAD}/activities", "post", 200),
    ("potential_seller", "push-potential-seller", f"/rest/sites/{SITE}/potential-seller-leads", "post", 201),
    ("update_lead_v2", "push-update-lead-v2", f"/v2/rest/sites/{SITE}/leads/{LEAD}/", "patch", 200),
]


def test_every_operation_has_a_push_path():
    assert [operation for operation, *_ in PUSH_PATHS] == list(OPERATIONS)


@pytest.mark.parametrize(("operation", "url_name", "path", "method", "success"), PUSH_PATHS)
def test_each_operation_is_pushed_on_rgs_path_with_rgs_method_and_success_status(
    operation, url_name, path, method, success
):
    kwargs = {"site_uuid": SITE, **({"lead_id": LEAD} if LEAD in path else {})}
    assert reverse(f"leads:{url_name}", kwargs=kwargs) == path.rstrip("/")
    for spelling in (path, path.rstrip("/") if path.endswith("/") else path + "/"):
        match = resolve(spelling)
        view = match.func.view_class  # type: ignore[attr-defined]
        assert (match.url_name, view.operation, view.success_status) == (url_name, operation, success)
        assert [name for name in ("get", "post", "put", "patch", "delete") if hasattr(view, name)] == [method]
