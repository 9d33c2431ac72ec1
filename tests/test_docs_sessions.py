"""Every command-line session of the documentation runs as the page shows it (tools/docs_sessions.py): the
quick ones of each page in order, in a fresh folder, through a shell with the installed `cnnlab`, each
command's output compared by shape and its exit code with the one the page implies. Sessions marked
`<!-- docs-results -->` (minutes to hours) are left to `make docs-results`, which stamps them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import docs_sessions  # noqa: E402

PAGES = [page for page in docs_sessions.pages()
         if any(block.steps and not block.results for block in docs_sessions.blocks(page.read_text()))]


def test_the_docs_have_sessions_and_long_ones_are_stamped() -> None:
    assert len(PAGES) >= 8
    for page in docs_sessions.pages():
        text = page.read_text()
        for block in docs_sessions.blocks(text):
            if block.results:
                assert docs_sessions.STAMP.match(text, block.end), f"{page}: a docs-results session without a stamp"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(docs_sessions.DOCS)) for p in PAGES])
def test_a_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    problems = docs_sessions.check_page(page, tmp_path)
    assert not problems, f"{page.relative_to(ROOT)}:\n\n" + "\n\n".join(problems)


def test_output_is_compared_by_shape() -> None:
    assert docs_sessions.fits(["epoch 1/5  loss 0.25", "...", "done"], ["epoch 1/5 loss 12.5", "x", "y", "done"])
    assert not docs_sessions.fits(["epoch 1/5  loss 0.25"], ["epoch 1/5  acc 0.25"])
    assert docs_sessions.expected_exit(["error: unknown model"]) == 2
    assert docs_sessions.expected_exit(["BAD x", "(exit 1)"]) == 1
    assert docs_sessions.printed(["BAD x", "(exit 1)"]) == ["BAD x"]


def test_sessions_files_and_results_are_found_in_a_page() -> None:
    text = ("<!-- docs-file: a.yaml -->\n```yaml\nx: 1\n```\n\n<!-- docs-results -->\n```\n$ cnnlab long\n...\n```\n"
            '<small class="docs-stamp">stamp</small>\n\n  ```\n  $ cnnlab quick\n  out\n  ```\n')
    found = docs_sessions.blocks(text)
    assert [b.file for b in found] == ["a.yaml", None, None]
    assert found[0].text == "x: 1\n"
    assert found[1].results and [s.command for s in found[1].steps] == ["cnnlab long"]
    assert not found[2].results and found[2].steps[0].expected == ["out"]


def test_docs_results_writes_a_long_sessions_output_with_its_stamp(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n<!-- docs-results -->\n```\n$ cnnlab --version\nold output\n```\n"
                    '<small class="docs-stamp">Output pasted earlier.</small>\n\n'
                    "<!-- docs-picture: drawn.png -->\n![a picture](shown.png)\n\n```\n$ touch drawn.png\n```\n")
    folder = tmp_path / "work"
    folder.mkdir()
    docs_sessions.regenerate(page, folder, timeout=60)
    text = page.read_text()
    from cnnlab import __version__

    assert f"$ cnnlab --version\ncnnlab {__version__}\n```\n" in text and "old output" not in text
    stamp = docs_sessions.STAMP.search(text).group(0)
    assert f"cnnlab {__version__}" in stamp and "cores" in stamp and " s wall" in stamp and "earlier" not in stamp
    assert text.count("docs-stamp") == 1
    assert (tmp_path / "shown.png").is_file()  # the picture the page shows is the one its session drew
