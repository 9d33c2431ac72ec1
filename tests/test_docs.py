"""The documentation site builds with `mkdocs build --strict` (no broken link, no page missing from the nav,
no warning), and its reference pages are generated from the code: every config key, every command and
option, every run.json field appears with what the code says about it."""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import docs_reference  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.slow
def test_every_config_key_is_in_the_reference_with_its_meaning(site: Path) -> None:
    from cnnlab.config import sections

    page = " ".join(text_of(site / "reference" / "config.html").split())
    hints = typing.get_type_hints(sections.RunConfig)
    for section in dataclasses.fields(sections.RunConfig):
        cls = hints[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        comments = docs_reference.field_comments(cls)
        for item in dataclasses.fields(cls):
            if item.name != "options":
                assert f"{section.name}.{item.name}" in page
                assert " ".join(comments[item.name].replace("`", "").split())[:50] in page, item.name
    assert "model.filters" in page and "optim.nus" in page and "schedule.step_size" in page


@pytest.mark.slow
def test_every_command_and_option_is_in_the_reference(site: Path) -> None:
    from cnnlab.cli import build_parser

    page = text_of(site / "reference" / "commands.html")
    for path, parser in docs_reference._subcommands(build_parser(), "cnnlab"):
        assert path in page
        for action in parser._actions:
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                for option in action.option_strings:
                    assert option in page, (path, option)


@pytest.mark.slow
def test_the_api_reference_and_the_notebooks_are_pages(site: Path) -> None:
    from cnnlab.runs.record import RunRecord

    api = text_of(site / "reference" / "api.html")
    assert "Train one run. keywords are config overrides" in api  # train's docstring, by mkdocstrings
    run_json = text_of(site / "reference" / "run-directory.html")
    assert all(field.name in run_json for field in dataclasses.fields(RunRecord) if field.name != "extra")
    notebook = text_of(site / "tutorials" / "first-session-notebook.html")  # rendered by mkdocs-jupyter
    assert "cnnlab.train(" in notebook


def test_a_config_key_without_a_meaning_fails_the_reference() -> None:
    @dataclasses.dataclass
    class Section:
        explained: int = 1  # what it means
        unexplained: int = 2

    with pytest.raises(ValueError, match="unexplained has no comment"):
        docs_reference._section("made_up", Section)


def test_generated_markers_are_filled_and_unknown_ones_refused() -> None:
    assert "`data.val_fraction`" in docs_reference.fill("<!-- generated: config-keys -->\n")
    with pytest.raises(ValueError, match="no such generator"):
        docs_reference.fill("<!-- generated: nothing-like-this -->\n")


def internal_links(site: Path) -> tuple[int, list[str]]:
    """(how many internal links the built site has, those that lead nowhere: a missing file or a missing
    anchor), over every page, the notebooks' included."""
    from urllib.parse import unquote, urlsplit

    anchors: dict[Path, set[str]] = {}
    broken, count = [], 0
    for page in sorted(site.rglob("*.html")):
        for link in re.findall(r'\b(?:href|src)="([^"]*)"', page.read_text(errors="replace")):
            link = html.unescape(link)
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            count += 1
            base = site if parts.path.startswith("/") else page.parent
            target = (base / unquote(parts.path.lstrip("/"))).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                if target not in anchors:
                    anchors[target] = set(re.findall(r'\b(?:id|name)="([^"]+)"', target.read_text(errors="replace")))
                if unquote(parts.fragment) not in anchors[target]:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return count, broken


@pytest.mark.slow
def test_every_internal_link_of_the_built_site_leads_somewhere(site: Path) -> None:
    count, broken = internal_links(site)
    assert count > 1000 and not broken, "\n".join(broken)
    notebook = (site / "tutorials" / "alexnet-notebook.html").read_text()
    assert 'href="alexnet.html"' in notebook  # a notebook's link to its .md page, as the site's page


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.html").write_text('<h2 id="here">x</h2><a href="p.html#here">ok</a><a href="../b.html">gone'
                                           '</a><a href="p.html#there">no anchor</a><a href="https://x.org/y">out</a>')
    count, broken = internal_links(tmp_path)
    assert count == 3 and broken == ["a/p.html: ../b.html", "a/p.html: p.html#there (no such anchor)"]


@pytest.mark.slow
def test_the_navigation_has_one_title_per_page(site: Path) -> None:
    nav = re.findall(r'<a href="([^"#]*)" class="md-nav__link[^"]*">(.*?)</a>', (site / "index.html").read_text(),
                     flags=re.S)
    titles: dict[str, set[str]] = {}
    for target, inside in nav:
        titles.setdefault(" ".join(re.sub(r"<[^>]+>", " ", html.unescape(inside)).split()), set()).add(target)
    shared = {title: targets for title, targets in titles.items() if len(targets) > 1}
    assert len(titles) > 30 and not shared, shared  # "AlexNet's recipe" named the page and its notebook


@pytest.mark.slow
def test_search_works_in_the_site_opened_as_a_file(site: Path) -> None:
    """Material's offline plugin: the index as a script beside the pages, and the Web Worker shim served from
    the site itself (not from unpkg.com), so site/index.html opened from the disk searches without a server
    or a network. Where Chromium is installed, a search is run in it from file://."""
    index = (site / "search" / "search_index.js").read_text()
    assert index.startswith("var __index = ") and '"location":"tutorials/ablation.html"' in index
    for page in (site / "index.html", site / "tutorials" / "ablation.html"):
        text = page.read_text()
        assert "iframe-worker-shim.js" in text and "unpkg.com" not in text and "fonts.googleapis" not in text
    import shutil

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): the search itself is not run")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                          "--dump-dom", f"{(site / 'index.html').as_uri()}?q=lr-find"], capture_output=True,
                         text=True, timeout=180).stdout
    found = re.search(r'md-search-result__meta">\s*(\d+) matching documents?', dom)
    assert found and int(found.group(1)) > 0, dom[-2000:]


def test_the_docs_prose_has_no_doubled_full_stop() -> None:
    """A typo of the home page ("PyTorch >= 2.10).."), looked for in every page's prose (code left out)."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)
        found += [f"{page.relative_to(ROOT)}: ...{m.group(0)}" for m in re.finditer(r"\w\)?\.\.(?!\.)\s", prose)]
    assert not found, "\n".join(found)



LAYOUT_SCRIPT = """
<script>
window.addEventListener('load', () => setTimeout(() => {
  const found = {code: [], tables: [], merged: [], unpadded: 0};
  for (const pre of document.querySelectorAll('pre')) {
    const text = pre.textContent;
    const at = text.search(/^variation .*verdict/m);
    if (at < 0) continue;
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let offset = 0, node;
    while ((node = walker.nextNode())) {
      const index = text.indexOf('verdict', at) - offset;
      if (index >= 0 && index < node.length) {
        const range = document.createRange();
        range.setStart(node, index); range.setEnd(node, index + 7);
        found.code.push({right: range.getBoundingClientRect().right, visible: pre.getBoundingClientRect().right});
        break;
      }
      offset += node.length;
    }
  }
  for (const table of document.querySelectorAll('table')) {
    const heads = [...table.querySelectorAll('th')].map(th => th.textContent.trim());
    const verdict = [...table.querySelectorAll('th')].find(th => th.textContent.trim() === 'verdict');
    if (!verdict || !heads.includes('variation')) continue;
    const box = (table.closest('.md-typeset__scrollwrap') || table.closest('.jp-OutputArea-output') ||
                 table.parentElement).getBoundingClientRect();
    found.tables.push({right: verdict.getBoundingClientRect().right, visible: Math.min(box.right, window.innerWidth)});
    for (const row of table.querySelectorAll('tr')) {
      const cells = [...row.children];
      for (let i = 0; i + 1 < cells.length; i++) {
        const a = cells[i].getBoundingClientRect(), b = cells[i + 1].getBoundingClientRect();
        if (a.width > 0 && b.width > 0 && a.right > b.left + 0.5) found.merged.push(cells[i].textContent);
      }
      for (const cell of cells) {
        const style = getComputedStyle(cell);
        if (cell.textContent.trim() && parseFloat(style.paddingLeft) + parseFloat(style.paddingRight) < 4)
          found.unpadded += 1;
      }
    }
  }
  const out = document.createElement('pre');
  out.id = 'cnnlab-layout'; out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
}, 1500));
</script>
"""
# the pages that show study tables with a verdict column as today's output (optimizers.md and seed-studies.md
# show tables stamped as not regenerated, in the older format without one)
WIDE_TABLE_PAGES = ("verdicts.html", "tutorials/ablation.html", "tutorials/ablation-notebook.html",
                    "explanation/speed.html")


@pytest.mark.slow
@pytest.mark.parametrize("page", WIDE_TABLE_PAGES)
def test_study_tables_show_their_verdict_without_scrolling_and_no_cells_run_together(site: Path, page: str) -> None:
    """Rendered at 1400 px in headless Chromium (where installed): in every code block and HTML table that shows a
    study table, the verdict column lies inside the visible width, no two cells of a row overlap, and every cell
    has padding (the notebook pages ran cells together: '9.89% ± 0.2050.70% ± 0.79'). A screenshot of each page
    is kept in build/test-artefacts/ for a person to look at."""
    import json
    import shutil

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): the pages are not rendered")
    source = site / page
    probe = source.with_name(f".layout-{source.name}")
    probe.write_text(source.read_text().replace("</body>", LAYOUT_SCRIPT + "</body>"))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
             "--virtual-time-budget=15000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="cnnlab-layout">(.*?)</pre>', dom, re.S)
    assert found, f"{page}: the layout probe did not run"
    layout = json.loads(html.unescape(found.group(1)))
    artefacts = ROOT / "build" / "test-artefacts"
    artefacts.mkdir(parents=True, exist_ok=True)
    subprocess.run([*flags, f"--screenshot={artefacts / page.replace('/', '_')}.png", source.as_uri()],
                   capture_output=True, timeout=180)
    assert layout["code"] or layout["tables"], f"{page}: no study table found"
    hidden = [item for item in layout["code"] + layout["tables"] if item["right"] > item["visible"] + 1]
    assert not hidden, f"{page}: a verdict column past the visible width at 1400 px: {hidden}"
    assert not layout["merged"] and layout["unpadded"] == 0, f"{page}: cells run together: {layout}"
