"""`cnnlab data info | show | verify` on data the tests write."""

from pathlib import Path

from PIL import Image

from cnnlab.cli import main
from tests.helpers import write_caltech, write_jpeg_tree


def test_info_lists_splits_and_classes(capsys, mnist_root: Path) -> None:
    assert main(["data", "info", "mnist", f"data.root={mnist_root}"]) == 0
    out = capsys.readouterr().out
    assert "splits: train 180  val 20  test 50; 10 classes" in out
    assert "images: 28x28 (auto to 32x32)" in out and "pixel mean" in out


def test_show_writes_a_grid(tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid.png"
    assert main(["data", "show", "digits", "--augment", "-n", "12", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size[0] > 600 and image.size[1] > 200


def test_verify_reports_each_bad_file(tmp_path: Path, capsys) -> None:
    root = write_jpeg_tree(tmp_path / "tree", {"a": 3, "b": 3})
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "b" / "fake.png").write_text("hello")
    Image.new("RGBA", (5, 5)).save(root / "b" / "alpha.png")  # fine: converted, not reported
    (root / "c").mkdir()
    assert main(["data", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"BAD  {root / 'a' / 'empty.jpg'}: zero-byte" in out
    assert f"BAD  {root / 'b' / 'fake.png'}: not an image" in out
    assert "checked 9 images in 2 classes: 2 bad" in out and "without images: c" in out


def test_verify_a_clean_dataset_by_name(tmp_path: Path, capsys) -> None:
    write_caltech(tmp_path, classes=2, per_class=3)
    assert main(["data", "verify", "caltech101", f"data.root={tmp_path}", "data.workers=0"]) == 0
    assert "caltech101 from" in capsys.readouterr().out
    assert main(["data", "verify", str(tmp_path / "nothing")]) == 2
