"""The `when` filter: every dashboard time in settings.TIME_ZONE, labelled, with how long ago."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.templatetags.when import absolute, relative, when_html

NOW = datetime(2026, 11, 30, 17, 34, 5, tzinfo=UTC)
AT = datetime(2026, 11, 30, 17, 31, 5, tzinfo=UTC)


def test_it_renders_a_time_element_in_utc_with_the_zone_and_how_long_ago():
    assert when_html(AT, now=NOW) == (
        '<time class="when" datetime="2026-11-30T17:31:05Z" title="2026-11-30 17:31:05 UTC" data-when="long">'
        '2026-11-30 17:31 UTC · <span class="ago">3 min ago</span></time>'
    )


@pytest.mark.parametrize(
    ("delta", "long", "short"),
    [
        (timedelta(seconds=0), "just now", "now"),
        (timedelta(seconds=44), "just now", "now"),
        (timedelta(seconds=45), "1 min ago", "1m ago"),
        (timedelta(minutes=3, seconds=59), "3 min ago", "3m ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago", "59m ago"),
        (timedelta(hours=1), "1 hour ago", "1h ago"),
        (timedelta(hours=5, minutes=59), "5 hours ago", "5h ago"),
        (timedelta(days=1), "1 day ago", "1d ago"),
        (timedelta(days=40), "40 days ago", "40d ago"),
        (-timedelta(seconds=10), "in a moment", "now"),
        (-timedelta(minutes=5), "in 5 min", "in 5m"),
        (-timedelta(hours=2), "in 2 hours", "in 2h"),
        (-timedelta(days=3), "in 3 days", "in 3d"),
    ],
)
def test_it_says_how_far_a_time_is_from_now_in_whole_units(delta, long, short):
    assert relative(NOW - delta, NOW) == long
    assert relative(NOW - delta, NOW, compact=True) == short


def test_a_naive_time_is_read_in_the_configured_zone():
    naive = datetime(2026, 11, 30, 17, 31, 5)

    assert when_html(naive, now=NOW) == when_html(AT, now=NOW)


def test_an_aware_time_in_another_zone_is_shown_in_the_configured_one():
    honolulu = AT.astimezone(timezone.get_fixed_timezone(-600))

    assert 'datetime="2026-11-30T17:31:05Z"' in when_html(honolulu, now=NOW)
    assert absolute(honolulu) == "2026-11-30 17:31 UTC"


def test_the_configured_zone_is_the_label(settings):
    settings.TIME_ZONE = "America/New_York"

    assert absolute(AT, "seconds") == "2026-11-30 12:31:05 EST"
    assert 'datetime="2026-11-30T17:31:05Z"' in when_html(AT, now=NOW)


@pytest.mark.parametrize(
    ("style", "text"),
    [
        ("seconds", "2026-11-30 17:31:05 UTC · <span"),
        ("precise", "2026-11-30 17:31:05.000250 UTC · <span"),
        ("compact", '11-30 17:31 UTC · <span class="ago">2m ago</span>'),  # 2 min 59.99975 s
    ],
)
def test_each_style_shows_its_precision(style, text):
    assert text in when_html(AT + timedelta(microseconds=250), style, now=NOW)


def test_the_compact_style_keeps_the_year_of_another_year():
    assert "2025-12-31 23:00 UTC" in when_html(datetime(2025, 12, 31, 23, tzinfo=UTC), "compact", now=NOW)


@pytest.mark.parametrize("missing", [None, ""])
def test_none_and_missing_values_are_an_em_dash(missing):
    assert (
        Template("{% load when %}{{ value|when }}|{{ value|when_text }}").render(Context({"value": missing})) == "—|—"
    )
    assert Template("{% load when %}{{ nothing|when }}").render(Context({})) == "—"


def test_a_date_is_shown_as_a_day():
    assert when_html(date(2026, 11, 30)) == '<time datetime="2026-11-30">2026-11-30</time>'


def test_the_filter_in_a_template_uses_the_current_time_and_escapes_nothing_twice():
    recent = timezone.now() - timedelta(minutes=2, seconds=5)

    html = Template('{% load when %}{{ at|when:"compact" }} {{ at|when_text:"seconds" }}').render(
        Context({"at": recent})
    )

    assert '<span class="ago">2m ago</span></time>' in html
    assert f"{recent:%Y-%m-%d %H:%M:%S} UTC" in html


def test_a_string_is_escaped_not_trusted():
    assert when_html("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
