"""Files a user hands cnnlab, and folders it writes into, that try to make it do harm (issue 22):
decompression-bomb headers and a 13,000x13,000 photo given to `predict`, a run's plots/ folder linked out
of the runs folder, a class folder linked back into its own tree. Each goes through the real program."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from tests.helpers import jpeg_header_only, png_header_only, write_jpeg_tree
from tests.reliability.helpers import TINY, cli, cli_all, cli_here, finish, start

FOLDER_LIMIT = "89,478,485"  # data.max_pixels' default: Pillow's own warning threshold


def tiny_run(tmp_path: Path) -> Path:
    assert cli_here("train", *TINY, "epochs=1", "--name", "r", "--quiet", cwd=tmp_path).returncode == 0
    return tmp_path / "runs" / "r"


def test_predict_refuses_bomb_headers_with_the_words_of_an_image_folder(tmp_path: Path) -> None:
    """A PNG declaring 100,000^2 pixels and a JPEG declaring 65,500^2: `predict` exits 2 naming the file and
    the limit, no traceback, with the very words `data verify` uses for the same files in a class folder."""
    run = tiny_run(tmp_path)
    root = write_jpeg_tree(tmp_path / "tree", {"cats": 2, "dogs": 2})
    bombs = [png_header_only(root / "cats" / "bomb.png", 100_000, 100_000),
             jpeg_header_only(root / "dogs" / "bomb.jpg", 65_500, 65_500)]
    *predicted, verified = cli_all(*(("predict", str(run), str(bomb)) for bomb in bombs),
                                   ("data", "verify", str(root)), cwd=tmp_path)
    for bomb, result in zip(bombs, predicted):
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.output
        assert result.stderr.startswith(f"error: image '{bomb}' cannot be used: too large: ")
        assert f"the limit of {FOLDER_LIMIT}" in result.stderr and "--max-pixels" in result.stderr
        line = next(line for line in verified.stdout.splitlines() if line.startswith(f"BAD  {bomb}: "))
        assert line.removeprefix(f"BAD  {bomb}: ") in result.stderr  # "too large: its header declares ..."
    assert "4,290,250,000 pixels" in predicted[1].stderr


def test_predict_decodes_a_huge_photo_at_the_size_the_network_needs(tmp_path: Path) -> None:
    """Real photos of 9,400^2 (88 M pixels, under the default limit) and 13,000^2 (169 M, above it, allowed
    with --max-pixels): each predicted in about the memory of a 64^2 one (decoded whole, the 13,000^2 one
    took 2.5 GB), with the same answer. Over the limit without --max-pixels: exit 2, the limit named."""
    run = tiny_run(tmp_path)
    for name, side in (("huge.jpg", 13_000), ("big.jpg", 9_400), ("small.jpg", 64)):
        Image.new("L", (side, side), 120).save(tmp_path / name, quality=90)
    huge, big, small, refused = cli_all(("predict", str(run), "huge.jpg", "--max-pixels", "200000000"),
                                        *(("predict", str(run), name) for name in ("big.jpg", "small.jpg",
                                                                                  "huge.jpg")), cwd=tmp_path)
    for result in (big, huge):
        assert result.returncode == 0 and small.returncode == 0, result.output + small.output
        assert result.stdout.splitlines()[1:] == small.stdout.splitlines()[1:]  # the same picture, same answer
        assert 0 < result.max_rss_mb < small.max_rss_mb + 100, (result.max_rss_mb, small.max_rss_mb)
    assert refused.returncode == 2 and f"13000x13000 = 169,000,000 pixels exceeds the limit of {FOLDER_LIMIT}" \
        in refused.stderr


def test_eval_and_report_never_write_through_a_link_out_of_the_run(tmp_path: Path) -> None:
    """RUN/plots -> a folder outside the runs folder: `eval` and `report` exit 2 naming the link and write
    nothing, there or in the run; a link that stays inside the run directory is followed as before."""
    run = tiny_run(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(run / "plots")
    (run / "plots").symlink_to(outside)
    before = sorted(p.name for p in run.iterdir())
    for command in ("eval", "report"):
        result = cli(command, str(run), cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.output
        assert f"'{run / 'plots'}' is a link to '{outside.resolve()}', outside the run directory" in result.stderr
    assert not any(outside.iterdir()) and sorted(p.name for p in run.iterdir()) == before
    (run / "plots").unlink()
    (run / "pictures").mkdir()
    (run / "plots").symlink_to("pictures")
    assert cli_here("eval", str(run), cwd=tmp_path).returncode == 0
    assert (run / "pictures" / "confusion_test.png").is_file() and (run / "plots").is_symlink()


def test_a_class_folder_linked_back_into_its_tree_is_no_class(tmp_path: Path) -> None:
    """`loop -> .` in an image folder: `cnnlab data info` and a real training run see two classes, not a
    third holding copies of the others' images; one note names the link, and the run records it."""
    root = write_jpeg_tree(tmp_path / "tree", {"cats": 8, "dogs": 8})
    (root / "loop").symlink_to(".")
    folder = ("data=imagefolder", f"data.root={root}", "data.workers=0")
    info = start("data", "info", "imagefolder", *folder[1:], cwd=tmp_path)
    trained = cli_here("train", *folder, "model=lenet5", "data.image_size=32", "epochs=1", "batch_size=4",
                       "--quiet", "--name", "folder", cwd=tmp_path)
    info = finish(info)
    assert info.returncode == 0 and trained.returncode == 0, info.output + trained.output
    rows = [line.split()[0] for line in info.stdout.splitlines() if line.startswith(("cats", "dogs", "loop"))]
    notes = [line for line in info.stdout.splitlines() if f"loop -> {root.resolve()}" in line]
    assert rows == ["cats", "dogs"] and len(notes) == 1 and notes[0].startswith("note: ")
    record = json.loads((tmp_path / "runs" / "folder" / "run.json").read_text())
    assert record["data"]["classes"] == ["cats", "dogs"]
    assert any(f"loop -> {root.resolve()}" in note for note in record["data_notes"])
    used = json.loads((tmp_path / "runs" / "folder" / "split.json").read_text())
    assert not any("loop" in str(path) for split in ("train", "val", "test") for path in used.get(split) or [])
