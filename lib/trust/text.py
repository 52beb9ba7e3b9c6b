"""Text is text: strings from users, imports or KIE are escaped before they meet Streamlit's markdown.

Every Streamlit call that renders markdown (markdown, caption, write, info/warning/error/success, toast, widget
labels, subheaders) gets data only through `md()`. Widgets that show plain text (dataframe cells, code, json,
selectbox options) need no escaping.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation. Escaping all of it turns off emphasis, links,
# images, headings, lists, tables, HTML, autolinks (`www.` / `http:` lose their dots and colons), LaTeX ($),
# and Streamlit's own :color[...] / :material/...: / :emoji: directives.
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_TABLE = {ord(c): "\\" + c for c in _PUNCTUATION}
_TABLE.update({ord("\r"): " ", ord("\x00"): "", ord("\u2028"): " ", ord("\u2029"): " "})
# Streamlit's markdown (remark-gfm) still turns escaped `http\://…`, `www\.…` and `a\@b.c` into links, so an
# invisible WORD JOINER (U+2060) goes where an autolink would start: the text reads the same, no link appears.
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=:)|(?<=http)(?=:)|(?<=www)(?=\.)|(?<=[\w.+-])(?=@[\w-])")
WORD_JOINER = "\u2060"


def md(value: object, limit: int | None = None) -> str:
    """`value` as markdown that displays literally; cut to `limit` characters (with '…') when given."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return _AUTOLINK.sub(WORD_JOINER, text).translate(_TABLE).replace("\n", "  \n")


def md_line(value: object, limit: int | None = None) -> str:
    """Like md(), on one line (newlines become spaces): for labels, captions and list items."""
    text = "" if value is None else str(value)
    return md(" ".join(text.split()), limit)
