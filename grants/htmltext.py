"""HTML email bodies as plain lines of text, plus the links they carry. Pure, stdlib only."""

import re
from html.parser import HTMLParser

# Elements that start a new line of text; table cells are joined with " | " so a site's name and
# its UUID in one table row stay on one line (the parser looks for names on the UUID's line).
_BLOCK = frozenset(
    {"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
)
_CELL = frozenset({"td", "th"})
_SKIP = frozenset({"script", "style", "head", "title"})
_TAG = re.compile(r"<[^>]*>")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCK:
            self.chunks.append("\n")
        elif tag in _CELL:
            self.chunks.append(" | ")
        if tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and friends: a start tag with no content, never a skipped section.
        if tag in _BLOCK:
            self.chunks.append("\n")
        if tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """The readable text of `html` (one line per block, cells joined by " | ") and its link targets.

    Never raises: markup so broken that the stdlib parser gives up is stripped of tags instead.
    """
    collector = _Collector()
    try:
        collector.feed(html)
        collector.close()
    except (AssertionError, ValueError, AttributeError, IndexError):
        # html.parser's marked-section handling can still fail on garbage; fall back to a tag strip.
        return _TAG.sub(" ", html), collector.links
    text = "".join(collector.chunks)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line), collector.links
