"""A mkdocs hook (mkdocs.yml `hooks:`): the links of the tutorial notebooks' pages point at the site's pages.

A notebook links the Markdown pages beside it (`[the tutorial](alexnet.md)`), which is right where it is opened
(JupyterLab, GitHub) but not in the built site, whose pages are .html: mkdocs rewrites the links of .md pages
only, and mkdocs-jupyter leaves a notebook's as they are. Here a notebook page's relative links to .md files
become links to their .html pages (anchors kept); tests/test_docs.py checks every internal link of the site."""

from __future__ import annotations

import re
from typing import Any

MD_LINK = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#?]+)\.md(#[^"]*)?"')


def notebook_links(html: str) -> str:
    """`href="alexnet.md#x"` -> `href="alexnet.html#x"`; absolute and external links as they are."""
    return MD_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', html)


def on_page_content(html: str, page: Any, **_: Any) -> str:
    if page.file.src_path.endswith(".ipynb"):
        return notebook_links(html)
    return html
