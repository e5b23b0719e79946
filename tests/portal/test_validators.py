import pytest
from django.core.exceptions import ValidationError

from portal.validators import validate_phone


@pytest.mark.parametrize(
    "phone",
    [
        "808-123-1234",
        "(808) 123-1234",
        "+55 83 1234-1234",
        "808.555.0199",
        "8085550199",
        "555 0199",
        "+1 (808) 555-0199",
    ],
)
def test_a_phone_number_as_people_type_it_is_valid(phone):
    validate_phone(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "call me",
        "555-019",
        "1234567890123456",
        "808 555 0199 ext 2",
        "++1 808 555 0199",
        "1-808-555-0199+",
        "808/555/0199",
    ],
)
def test_a_phone_number_with_other_characters_or_too_few_or_many_digits_is_refused(phone):
    with pytest.raises(ValidationError, match="7 to 15 digits"):
        validate_phone(phone)
