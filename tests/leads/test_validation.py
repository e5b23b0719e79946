import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.validation import (
    ACTIVITY_FIELDS,
    LEAD_FIELDS,
    MAX_DEPTH,
    PROPERTY_FIELDS,
    USER_FIELDS,
    PayloadError,
    parse_json,
    validate_activities,
    validate_activity,
    validate_lead,
    validate_potential_seller,
)

RG_EXAMPLE = json.loads(
    (Path(__file__).parent.parent / "sandbox" / "fixtures" / "realgeeks_example_lead.json").read_text()
)
LEAD_ID = "0b8a7f3c-5d2e-4f1a-9c6b-3e2d1f0a9b8c"


def lead(**fields: Any) -> dict[str, Any]:
    return {"source": "Acme Homes", "email": "kai@example.com", **fields}


def viewed(**property_fields: Any) -> dict[str, Any]:
    return {"type": "property_viewed", "property": {"mls": "12345", **property_fields}}


def refusal(validate: Any, data: Any, **kwargs: Any) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        validate(data, **kwargs)
    return info.value


# RG's own example and the general contract


def test_rg_own_example_is_accepted_as_given():
    assert validate_lead(copy.deepcopy(RG_EXAMPLE)) == RG_EXAMPLE


def test_the_result_is_a_copy_the_caller_may_change():
    body = copy.deepcopy(RG_EXAMPLE)
    result = validate_lead(body)
    result["id"] = LEAD_ID
    result["activities"][0]["created"] = "2020-01-01T00:00:00Z"
    result["activities"][1]["property"]["beds"] = 9
    assert body == RG_EXAMPLE


def test_unknown_fields_pass_through_and_nothing_is_added():
    body = lead(
        favourite_color={"nested": [1, 2.5, None]},
        activities=[{"type": "note", "mood": "happy", "property": {"pool": True}, "user": {"id": "7", "x": 1}}],
    )
    assert validate_lead(copy.deepcopy(body)) == body


def test_null_counts_as_absent_for_optional_fields():
    body = lead(role=None, tags=None, created=None, activities=[{"type": "note", "property": None, "user": None}])
    assert validate_lead(body) == body


# Lead fields


def test_a_new_lead_needs_a_source():
    assert refusal(validate_lead, {"email": "kai@example.com"}).message == "Field 'source' is required."
    assert refusal(validate_lead, lead(source="")).message == "Field 'source' is required."


def test_a_new_lead_needs_a_way_to_identify_the_person():
    error = refusal(validate_lead, {"source": "Acme Homes", "city": "Kailua", "email": ""})
    assert error.status == 422
    assert error.message.startswith("Lead must have at least one of: email,")


@pytest.mark.parametrize(
    "identifier", [{"first_name": "Kai"}, {"last_name": "Akana"}, {"phone": "(808) 123-1234"}, {"address": "1 Main"}]
)
def test_a_name_a_phone_or_an_address_is_enough_to_identify_a_lead(identifier):
    assert validate_lead({"source": "Acme Homes", **identifier}) == {"source": "Acme Homes", **identifier}


@pytest.mark.parametrize(
    "lead_id",
    [LEAD_ID, LEAD_ID.replace("-", ""), LEAD_ID.upper(), "{" + LEAD_ID + "}", "urn:uuid:" + LEAD_ID],
)
def test_any_uuid_spelling_is_accepted_and_kept_as_given(lead_id):
    assert validate_lead(lead(id=lead_id))["id"] == lead_id


@pytest.mark.parametrize("lead_id", ["123", "", 123, LEAD_ID + "0", "\u0660" * 32, ["x"], LEAD_ID.replace("0", "g")])
def test_an_id_that_is_not_a_uuid_is_refused(lead_id):
    error = refusal(validate_lead, lead(id=lead_id))
    assert (error.status, error.message, error.where) == (422, "Field 'id' is not a valid UUID.", "id")


@pytest.mark.parametrize("role", ["Buyer", "Seller", "Buyer and Seller", "Renter"])
def test_each_rg_role_is_accepted(role):
    assert validate_lead(lead(role=role))["role"] == role


@pytest.mark.parametrize("role", ["buyer", "Agent", "", 1, ["Buyer"]])
def test_other_roles_are_refused_naming_the_choices(role):
    message = refusal(validate_lead, lead(role=role)).message
    assert message == "Field 'role' must be one of: Buyer, Seller, Buyer and Seller, Renter."


@pytest.mark.parametrize("field", ["email", "second_email"])
@pytest.mark.parametrize("email", ["jack", "jack@", "@gmail.com", "jack@gmail", "ja ck@gmail.com", "a@b@c.com"])
def test_an_implausible_email_is_refused(field, email):
    assert refusal(validate_lead, lead(**{field: email})).message == f"Field '{field}' is not a valid email address."


@pytest.mark.parametrize("field", ["first_name", "phone", "phone2", "zip", "notes", "source", "source_details"])
@pytest.mark.parametrize("value", [808, 1.5, True, ["x"], {"x": 1}])
def test_text_fields_must_be_strings(field, value):
    assert refusal(validate_lead, lead(**{field: value})).message == f"Field '{field}' must be a string."


@pytest.mark.parametrize("tags", ["oahu", ["oahu", 1], [None], {"a": "b"}])
def test_tags_must_be_a_list_of_strings(tags):
    assert refusal(validate_lead, lead(tags=tags)).message == "Field 'tags' must be a list of strings."


@pytest.mark.parametrize(
    "created",
    [
        "2015-04-01T08:41:51+00:00",
        "2016-12-24T01:58:52.789337607Z",
        "2016-12-24T01:58:52.7z",
        "2015-04-01t08:41:51-10:00",
        "2024-02-29T23:59:59+14:00",
    ],
)
def test_rfc_3339_timestamps_with_up_to_nine_fractional_digits_are_accepted(created):
    assert validate_lead(lead(created=created))["created"] == created


@pytest.mark.parametrize(
    "created",
    [
        "2015-04-01",
        "2015-04-01T08:41:51",
        "2015-04-01 08:41:51Z",
        "2015-04-01T08:41:51+0000",
        "2015-04-01T08:41:51.1234567890Z",
        "2015-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2015-04-01T24:00:00Z",
        "2015-04-01T08:41:51+25:00",
        "2015-04-01T08:41:51.Z",
        "\u0661\u0662\u0663\u0664-04-01T08:41:51Z",
        1427877711,
        "",
    ],
)
def test_other_timestamps_are_refused(created):
    assert refusal(validate_lead, lead(created=created)).message == "Field 'created' is not a valid timestamp."


# Activities and their objects


def test_an_activity_needs_a_type():
    assert refusal(validate_activity, {"description": "hi"}).message == "Activity field 'type' is required."
    assert refusal(validate_activity, {"type": ""}).message == "Activity field 'type' is required."
    assert refusal(validate_activity, {"type": 5}).message == "Activity field 'type' must be a string."


def test_activity_types_rg_has_not_told_us_about_are_accepted():
    assert validate_activity({"type": "listing_alert_sent"}) == {"type": "listing_alert_sent"}


@pytest.mark.parametrize(
    ("activity", "message"),
    [
        ({"type": "note", "notify_users": "yes"}, "Activity field 'notify_users' must be true or false."),
        ({"type": "note", "metadata": ["x"]}, "Activity field 'metadata' must be an object."),
        ({"type": "note", "created": "yesterday"}, "Activity field 'created' is not a valid timestamp."),
        ({"type": "note", "description": 12}, "Activity field 'description' must be a string."),
        ({"type": "note", "property": "123 Keolu Dr"}, "Activity field 'property' must be an object."),
        ({"type": "was_assigned", "user": "14187"}, "Activity field 'user' must be an object."),
        ({"type": "was_assigned", "user": {"name": "Kai"}}, "User field 'id' is required."),
        ({"type": "was_assigned", "user": {"id": True}}, "User field 'id' must be a string or a number."),
        ({"type": "was_assigned", "user": {"id": ""}}, "User field 'id' must be a string or a number."),
        (
            {"type": "was_assigned", "user": {"id": "7", "email": "kai"}},
            "User field 'email' is not a valid email address.",
        ),
    ],
)
def test_activity_fields_are_checked(activity, message):
    assert refusal(validate_activity, activity).message == message


@pytest.mark.parametrize("user_id", ["14187", 14187])
def test_an_assignment_names_the_agent_by_string_or_number(user_id):
    activity = {"type": "was_assigned", "user": {"id": user_id, "role": "Agent", "name": "Kai"}, "notify_users": False}
    assert validate_activity(activity) == activity


@pytest.mark.parametrize("field", ["beds", "full_baths", "half_baths", "sqft", "listing_days_on_market"])
@pytest.mark.parametrize("count", [0, 2, "1", "1340", "-1", str(2**63 - 1)])
def test_counts_are_integers_or_integer_strings(field, count):
    assert validate_activity(viewed(**{field: count}))["property"][field] == count


@pytest.mark.parametrize("field", ["beds", "full_baths", "half_baths", "sqft", "listing_days_on_market"])
@pytest.mark.parametrize("count", [2.5, 2.0, "2.5", "", " 1", "two", "\u0661", True, False, 2**63, [1], {"n": 1}])
def test_other_counts_are_refused(field, count):
    assert (
        refusal(validate_activity, viewed(**{field: count})).message
        == f"Property field '{field}' is not a valid integer."
    )


def test_a_half_bath_count_names_the_field_and_where_it_is():
    body = lead(activities=[{"type": "note"}, viewed(full_baths=2.5)])
    error = refusal(validate_lead, body)
    assert (error.status, error.message) == (422, "Property field 'full_baths' is not a valid integer.")
    assert error.where == "activities[1].property.full_baths"


@pytest.mark.parametrize("field", ["listing_price", "estimated_value", "last_sold_price", "latitude", "longitude"])
@pytest.mark.parametrize("number", [100500, 25000.99, -157.8501134, "25000.99", "100500", "-1.5e3", ".5", 0])
def test_prices_and_coordinates_are_numbers_or_numeric_strings(field, number):
    assert validate_activity(viewed(**{field: number}))["property"][field] == number


@pytest.mark.parametrize("field", ["listing_price", "latitude"])
@pytest.mark.parametrize("number", ["$100", "1,000", "nan", "inf", "1e999", "", True, [], 10**400])
def test_other_prices_and_coordinates_are_refused(field, number):
    assert (
        refusal(validate_activity, viewed(**{field: number})).message
        == f"Property field '{field}' is not a valid number."
    )


@pytest.mark.parametrize("sold", ["2015-12-25", "2015-12-25T10:00:00Z"])
def test_last_sold_date_is_a_date_or_a_timestamp(sold):
    assert validate_activity(viewed(last_sold_date=sold))["property"]["last_sold_date"] == sold


@pytest.mark.parametrize("sold", ["2015-02-30", "12/25/2015", "2015-12", 20151225])
def test_other_last_sold_dates_are_refused(sold):
    message = refusal(validate_activity, viewed(last_sold_date=sold)).message
    assert message == "Property field 'last_sold_date' is not a valid date."


def test_property_text_and_tags_are_checked():
    assert refusal(validate_activity, viewed(mls=12345)).message == "Property field 'mls' must be a string."
    assert refusal(validate_activity, viewed(tags="oahu")).message == "Property field 'tags' must be a list of strings."


def test_a_lead_activities_field_must_be_a_list():
    assert refusal(validate_lead, lead(activities={"type": "note"})).message == (
        "Field 'activities' must be a list of activities."
    )


def test_the_activities_body_is_a_list_of_activity_objects():
    activities = [{"type": "note", "description": "Called back"}, {"type": "was_assigned", "user": {"id": "14187"}}]
    assert validate_activities(copy.deepcopy(activities)) == activities
    assert validate_activities([]) == []
    assert refusal(validate_activities, {"type": "note"}).message == "Activities must be a list of activities."
    error = refusal(validate_activities, [{"type": "note"}, "note"])
    assert (error.message, error.where) == ("Activity must be a JSON object.", "[1]")


# Partial updates


def test_an_update_needs_neither_source_nor_identifier():
    assert validate_lead({"notes": "Prefers mornings"}, partial=True) == {"notes": "Prefers mornings"}
    assert validate_lead({}, partial=True) == {}


def test_an_update_may_blank_any_field_to_unset_it():
    body = {"role": "", "created": "", "email": "", "tags": "", "source": ""}
    assert validate_lead(body, partial=True) == body


def test_an_update_still_checks_the_fields_it_sets():
    assert refusal(validate_lead, {"role": "Landlord"}, partial=True).message.startswith("Field 'role' must be one of")
    update = {"activities": [viewed(beds=2.5)]}
    assert refusal(validate_lead, update, partial=True).message == "Property field 'beds' is not a valid integer."


# Potential seller leads


def test_a_potential_seller_lead_with_a_viewed_property_is_accepted():
    body = {"id": LEAD_ID, "created": "2024-05-01T10:00:00Z", "activities": [viewed(estimated_value="650000")]}
    assert validate_potential_seller(copy.deepcopy(body)) == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": LEAD_ID}, "Field 'activities' is required."),
        ({"activities": []}, "Potential seller lead needs a 'property_viewed' activity with a property."),
        (
            {"activities": [{"type": "visited"}]},
            "Potential seller lead needs a 'property_viewed' activity with a property.",
        ),
        (
            {"activities": [{"type": "property_viewed"}]},
            "Potential seller lead needs a 'property_viewed' activity with a property.",
        ),
        ({"activities": [viewed()], "id": "nope"}, "Field 'id' is not a valid UUID."),
        ({"activities": [viewed()], "created": "today"}, "Field 'created' is not a valid timestamp."),
        ({"activities": [viewed(sqft="big")]}, "Property field 'sqft' is not a valid integer."),
    ],
)
def test_a_potential_seller_lead_is_refused_without_a_valid_viewed_property(body, message):
    assert refusal(validate_potential_seller, body).message == message


# Shapes and parsing


@pytest.mark.parametrize("body", [[], "lead", 7, None, True])
def test_valid_json_of_the_wrong_shape_is_422(body):
    assert (refusal(validate_lead, body).status, refusal(validate_lead, body).message) == (
        422,
        "Lead must be a JSON object.",
    )
    assert refusal(validate_potential_seller, body).status == 422
    assert refusal(validate_activity, body).message == "Activity must be a JSON object."


def test_parse_json_returns_the_value():
    assert parse_json(json.dumps(RG_EXAMPLE).encode()) == RG_EXAMPLE
    assert parse_json(b' [1, "\\ud83d\\ude00", {"a": null}] ') == [1, "\N{GRINNING FACE}", {"a": None}]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{'source': 'single quotes'}",
        b'{"source": "x",}',
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"source": "x"}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"1e999",
        b"1" * 5000,
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_body_that_is_not_readable_json_is_400(body):
    error = refusal(parse_json, body)
    assert error.status == 400
    assert error.message


def test_nesting_up_to_the_limit_is_accepted_and_deeper_is_400():
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    deeper = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    assert refusal(parse_json, deeper).status == 400


def test_brackets_inside_strings_do_not_hide_nesting_that_is_too_deep():
    # The nesting walk is skipped only for bodies with few "[" and "{" bytes at all; brackets
    # in text count toward that, so they can only make the check run, never skip it.
    deeper = b'["' + b"[" * MAX_DEPTH + b'",' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"]"
    assert refusal(parse_json, deeper).status == 400
    assert parse_json(b'["' + b"{" * (2 * MAX_DEPTH) + b'"]') == ["{" * (2 * MAX_DEPTH)]


@pytest.mark.parametrize(
    "body", [b'{"notes": "a\\u0000b"}', b'{"a\\u0000": 1}', b'["\\udc00"]', b'{"x": ["\\ud83d"]}', b'"\\uD800 "']
)
def test_text_a_database_cannot_store_is_400(body):
    assert refusal(parse_json, body).status == 400


# Properties: whatever arrives, only PayloadError comes out; whatever is accepted is unchanged.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
scalars = st.sampled_from(["", "1", "2.5", "Buyer", "kai@example.com", "2015-12-25", LEAD_ID, "2015-04-01T08:41:51Z"])
field_values = scalars | json_values


def objects_with(fields: dict[str, Any], **extra: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={**dict.fromkeys(fields, field_values), **extra})


properties = objects_with(PROPERTY_FIELDS)
users = objects_with(USER_FIELDS)
activities = objects_with(
    ACTIVITY_FIELDS, type=st.sampled_from(["note", "property_viewed", ""]), property=properties, user=users
)
leads = objects_with(LEAD_FIELDS, activities=st.lists(activities | json_values, max_size=3))
anything = leads | json_values | st.lists(activities, max_size=3)


def outcome(validate: Any, data: Any, **kwargs: Any) -> Any:
    original = copy.deepcopy(data)
    try:
        result = validate(data, **kwargs)
    except PayloadError as e:
        assert e.status in (400, 422)
        assert e.message
        return None
    assert data == original
    assert result == original
    return result


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(anything, st.booleans())
def test_any_json_is_accepted_unchanged_or_refused_with_a_payload_error(data, partial):
    outcome(validate_lead, data, partial=partial)
    outcome(validate_activities, data)
    outcome(validate_activity, data, where="activities[0]")
    outcome(validate_potential_seller, data)


@settings(max_examples=300)
@given(st.binary())
def test_any_bytes_parse_or_are_refused_with_a_payload_error(body):
    try:
        parse_json(body)
    except PayloadError as e:
        assert e.status == 400


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_whatever_parse_json_accepts_can_be_stored_as_utf8(data):
    body = json.dumps(data).encode()
    try:
        parsed = parse_json(body)
    except PayloadError as e:
        assert e.status == 400
        return
    json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    assert "\x00" not in json.dumps(parsed, ensure_ascii=False)
