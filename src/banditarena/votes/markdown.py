"""Model answers and prompts as sanitized markdown: no HTML from the text ever reaches the page.

markdown-it-py (CommonMark; a dependency of rich) with raw HTML off: ``<script>``, ``<img onerror=...>`` and
every other tag in an answer are escaped and shown as text. Links keep only http(s) and mailto targets
(markdown-it's own check already refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:``) and open
with ``rel="nofollow noopener noreferrer"``; images are shown as their alt text (no request leaves the page).
The page's CSP (:mod:`banditarena.web`) forbids inline script anyway: two independent walls.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_RENDER_CHARS = 60_000
SAFE_SCHEMES = ("http://", "https://", "mailto:")


@lru_cache(maxsize=1)
def _md() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")

    def validate(url: str) -> bool:
        u = url.strip().lower()
        return u.startswith(SAFE_SCHEMES) or u.startswith("#")

    md.validateLink = validate

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        from html import escape

        tok = tokens[idx]
        alt = "".join(c.content for c in (tok.children or []))
        return f'<span class="image-alt">[image: {escape(alt)}]</span>'

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


def render_markdown(text: str) -> str:
    """HTML of ``text`` as safe markdown (raw HTML escaped; long texts cut at :data:`MAX_RENDER_CHARS`)."""
    if len(text) > MAX_RENDER_CHARS:
        text = text[:MAX_RENDER_CHARS] + "\n\n[... cut]"
    return _md().render(text)
