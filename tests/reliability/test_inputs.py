"""Hostile and broken inputs: data files, image folders, names, values, disks. Each gets one message and
exit 2, memory stays bounded, and nothing is written or deleted outside the runs directory.

Checks 7, 8, 10, 14 and 15 of the fault-injection list (issue 12)."""

from __future__ import annotations

import gzip
import os
import pickle
import signal
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.data.cifar import load_pickle
from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError
from tests.helpers import write_cifar10, write_jpeg_tree, write_mnist_like
from tests.reliability.helpers import (
    TINY,
    cli,
    cli_all,
    cli_here,
    finish,
    on_small_disk,
    small_disk_available,
    start,
    tree,
)

RSS_LIMIT_MB = 1500  # python + torch is ~500 MB; a 6 GiB inflation or a 64 GiB string would blow far past


# ------------------------------------------------------------------------------------------- 7. data
def idx_header(dims: tuple[int, ...], type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_bomb(path: Path, header: bytes, zero_bytes: int) -> Path:
    """A .gz whose stream is `header` then `zero_bytes` zeros, written as repeated gzip members (the format
    allows concatenation), so a GiB of zeros costs a few hundred KB and no time to make."""
    chunk = 16 << 20
    member = gzip.compress(b"\0" * chunk, compresslevel=9)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(header))
        for _ in range(zero_bytes // chunk):
            handle.write(member)
    return path


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=0, max_size=40), payload=st.binary(min_size=0, max_size=200),
       gz=st.booleans())
def test_fuzzed_idx_files_are_data_errors(tmp_path: Path, header: bytes, payload: bytes, gz: bool) -> None:
    """7. Random headers and payloads, raw and gzipped: an array that matches its header, or a DataError."""
    path = tmp_path / ("x.gz" if gz else "x")
    blob = header + payload
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        array = read_idx(path)
    except DataError:
        return
    assert array.size * array.itemsize == len(blob) - 4 - 4 * array.ndim


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_cifar_batches_are_data_errors(tmp_path: Path, data) -> None:
    """7. Mutations of a real CIFAR batch pickle (flips, cuts, random opcodes): a dict or a DataError."""
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2], b"batch_label": b"x"}
    blob = bytearray(pickle.dumps(batch, protocol=data.draw(st.sampled_from([2, 4]))))
    kind = data.draw(st.sampled_from(["flip", "cut", "random", "insert"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 6))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    elif kind == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "random":
        blob = bytearray(data.draw(st.binary(min_size=1, max_size=300)))
    else:
        position = data.draw(st.integers(0, len(blob)))
        blob[position:position] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "data_batch_1"
    path.write_bytes(bytes(blob))
    try:
        load_pickle(path)
    except DataError:
        pass


def test_a_cifar_batch_whose_key_is_not_text_is_a_data_error(tmp_path: Path) -> None:
    """Found by the fuzzer above: one flipped byte made the key b"data" invalid UTF-8, and decoding it raised
    UnicodeDecodeError (a traceback) instead of the reader's message."""
    from cnnlab.data.cifar import read_batch

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"\x80ata": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2))
    with pytest.raises(DataError, match="'data' must be a uint8 array"):
        read_batch(path, "labels", 10)


def test_a_corrupt_string_opcode_is_refused_without_a_warning(tmp_path: Path) -> None:
    """Found by the fuzzer: a STRING opcode with an invalid escape made pickletools print Python's
    DeprecationWarning beside the reader's message."""
    import warnings

    path = tmp_path / "data_batch_1"
    path.write_bytes(b"S'\\q'\np0\n.")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="expected a dict"):
            load_pickle(path)
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)], [str(w.message) for w in seen]


def test_a_corrupt_codec_name_is_a_data_error(tmp_path: Path) -> None:
    """Found by the fuzzer: protocol 2 pickles numpy's bytes through _codecs.encode(..., 'latin1'); one
    flipped letter of the codec's name raised LookupError (a traceback) instead of the reader's message."""
    blob = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2)
    assert b"latin1" in blob
    path = tmp_path / "data_batch_1"
    path.write_bytes(blob.replace(b"latin1", b"latinX"))
    with pytest.raises(DataError, match="truncated or corrupt pickle"):
        load_pickle(path)


def test_a_corrupt_dtype_state_is_a_data_error_and_prints_nothing(tmp_path: Path, monkeypatch) -> None:
    """Found by fuzzing 40,000 mutations: a dtype whose pickled flags are corrupt makes numpy raise
    SystemError, then print a RuntimeError traceback while it frees the half-built array."""
    import gc

    blob = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=4)
    state = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"  # the uint8 dtype's state ends in its flags, 0
    assert blob.count(state) == 1
    path = tmp_path / "data_batch_1"
    path.write_bytes(blob.replace(state, state.replace(b"K\x00t", b"K3t")))
    printed: list = []  # what would reach the user's terminal as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    with pytest.raises(DataError, match="truncated or corrupt pickle"):
        load_pickle(path)
    gc.collect()
    assert not printed, [str(u.exc_value) for u in printed]


class Lie:
    """Pickles as numpy's own array reconstruction (the globals a CIFAR batch may use) with a shape of
    2^40 bytes and 4 bytes of data."""

    def __reduce__(self):
        reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
        return (reconstruct, (np.ndarray, (0,), b"b"), (1, (1 << 40,), np.dtype("uint8"), False, b"abcd"))


def bombs(root: Path) -> dict[str, Path]:
    """One hostile copy of a dataset per way of lying about sizes, each in its own data root."""
    made = {}
    for name in ("gzip_bomb", "huge_header", "ratio_lie", "ndim_255", "pickle_bomb", "pickle_size"):
        made[name] = root / name
    for name in ("gzip_bomb", "huge_header", "ratio_lie", "ndim_255"):
        directory = write_mnist_like(made[name] / "mnist", train=40, test=20, gz=True)
        target = directory / "train-images-idx3-ubyte.gz"
        if name == "gzip_bomb":  # the header says 40 images; the stream inflates to 1 GiB
            gzip_bomb(target, idx_header((40, 28, 28)), 1 << 30)
        elif name == "huge_header":  # 10^10 images of 1000x1000 declared
            target.write_bytes(gzip.compress(idx_header((10_000_000, 1000, 1000)) + b"\0" * 100))
        elif name == "ratio_lie":  # 3 GB declared (under the IDX limit) in a 1 KB file
            target.write_bytes(gzip.compress(idx_header((3_000_000, 1000)) + b"\0" * 100))
        else:
            target.write_bytes(gzip.compress(bytes([0, 0, 8, 255]) + b"\0\0\0\1" * 255))
    for name in ("pickle_bomb", "pickle_size"):
        directory = write_cifar10(made[name] / "cifar-10-batches-py", per_batch=4)
        if name == "pickle_bomb":  # 14 bytes declaring a 64 GiB string
            (directory / "data_batch_1").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 64 << 30) + b"ab")
        else:  # a numpy array claiming 2^40 elements over 4 bytes of data
            (directory / "data_batch_1").write_bytes(pickle.dumps({b"data": Lie(), b"labels": [0]}, protocol=2))
    return made


def test_bombs_are_refused_with_bounded_memory(tmp_path: Path) -> None:
    """7. A gzip IDX inflating to 1 GiB, a header declaring 10^16 bytes, a 3 GB claim from 1 KB, 255
    dimensions, a 64 GiB pickle string, an array larger than its bytes: each `cnnlab data verify` is one
    message, exit 2, and the process never holds more than RSS_LIMIT_MB."""
    made = bombs(tmp_path)
    dataset = {name: ("cifar10" if name.startswith("pickle") else "mnist") for name in made}
    results = cli_all(*(("data", "verify", dataset[n], f"data.root={made[n]}") for n in made), cwd=tmp_path)
    for name, result in zip(made, results):
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.output)
        assert 100 < result.max_rss_mb < RSS_LIMIT_MB, (name, result.max_rss_mb)  # measured, and bounded
    messages = dict(zip(made, (r.stderr for r in results)))
    assert "trailing bytes" in messages["gzip_bomb"]
    assert "more than the" in messages["huge_header"]
    assert "cannot inflate" in messages["ratio_lie"]
    assert "255 dimensions" in messages["ndim_255"]
    assert "corrupt pickle" in messages["pickle_bomb"] and "corrupt pickle" in messages["pickle_size"]


# --------------------------------------------------------------------------------- 8. image folders
def dirty_tree(root: Path) -> dict[str, str]:
    """A class-per-folder tree with every kind of file real folders hold; returns {file: expected problem}."""
    from PIL import Image

    write_jpeg_tree(root, {"cats": 10, "dogs": 10})
    problems = {}
    (root / "cats" / "zero.jpg").write_bytes(b"")
    problems["cats/zero.jpg"] = "zero-byte"
    good = (root / "cats" / "image_0001.jpg").read_bytes()
    (root / "cats" / "cut.jpg").write_bytes(good[: len(good) // 2])
    problems["cats/cut.jpg"] = "truncated"
    (root / "dogs" / "notes.jpg").write_text("not an image at all\n")
    problems["dogs/notes.jpg"] = "not an image"
    Image.new("CMYK", (30, 20), (0, 50, 100, 0)).save(root / "dogs" / "cmyk.jpg")
    Image.new("RGBA", (30, 20), (10, 200, 10, 128)).save(root / "dogs" / "rgba.png")
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(root / "cats" / "deep.png")
    Image.new("P", (30, 20), 3).save(root / "cats" / "palette.png")
    rotated = Image.new("RGB", (20, 30), (200, 10, 10))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(root / "dogs" / "rotated.jpg", exif=exif)
    bomb = root / "dogs" / "bomb.png"
    Image.new("L", (12000, 8000), 0).save(bomb, optimize=True)  # 96 Mpixel in a few hundred KB
    problems["dogs/bomb.png"] = "too large"
    (root / "empty").mkdir()
    (root / "cats" / "loop").symlink_to(root / "cats")
    secret = root.parent / "secret.jpg"
    secret.write_bytes(good)
    (root / "dogs" / "escape.jpg").symlink_to(secret)
    return problems


def test_dirty_image_folders_are_reported_by_name_and_skip_bad_trains_on_the_rest(tmp_path: Path) -> None:
    """8. Zero-byte, truncated, text-as-.jpg, CMYK, RGBA, 16-bit, palette, EXIF-rotated, a decompression
    bomb, a link loop, a link out of the tree, an empty class: verify names each bad file; training
    without --skip-bad stops before the first step naming them; with it, trains on the rest."""
    root = tmp_path / "tree"
    problems = dirty_tree(root)
    common = ("data=imagefolder", f"data.root={root}", "model=lenet5", "data.image_size=32", "epochs=1",
              "batch_size=4", "data.workers=0", "data.test_fraction=0.25", "--quiet")
    verify, strict, skipping = (cli_here(*args, cwd=tmp_path) for args in (
        ("data", "verify", str(root)), ("train", *common, "--name", "strict"),
        ("train", *common, "--skip-bad", "--name", "skipping")))
    assert verify.returncode == 1  # the documented exit of `data verify` when files are bad
    for name, kind in problems.items():
        assert f"{root / name}: {kind}" in verify.stdout, (name, verify.stdout)
    for fine in ("cmyk.jpg", "rgba.png", "deep.png", "palette.png", "rotated.jpg"):
        assert fine not in verify.stdout
    assert "escape.jpg -> " in verify.stdout and "without images: empty" in verify.stdout
    assert strict.returncode == 2 and "zero.jpg" in strict.stderr and "--skip-bad" in strict.stderr
    assert not (tmp_path / "runs" / "strict").exists()
    assert skipping.returncode == 0, skipping.output
    import json

    record = json.loads((tmp_path / "runs" / "skipping" / "run.json").read_text())
    assert {Path(p).name for p in record["skipped_files"]} == {Path(n).name for n in problems}
    used = json.loads((tmp_path / "runs" / "skipping" / "split.json").read_text())
    files = [f for split in ("train", "val", "test") for f in used.get(split) or []]
    assert not any("escape" in str(f) or "loop" in str(f) for f in files)


# ------------------------------------------------------------------------------- 14. disks at start
START_SCRIPT = "$CNNLAB train {args} --runs-dir '{disk}/runs' --name r; echo \"rc=$?\"; ls -A '{disk}' | tr '\\n' ' '"


@pytest.mark.skipif(not small_disk_available(), reason="no user+mount namespaces here (unshare -rm)")
@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_a_read_only_or_full_disk_is_refused_before_anything_is_written(tmp_path: Path, disk: str) -> None:
    """14. A read-only file system, and a full one (a 1 MB tmpfs, filled): exit 2, the reason, and the
    disk left exactly as it was."""
    mount = tmp_path / "disk"
    mount.mkdir()
    args = " ".join(TINY)
    if disk == "read-only":
        result = on_small_disk(START_SCRIPT.format(args=args, disk=mount), mount, "1m", tmp_path, options="ro")
        expected = "read-only"
    else:
        fill = f"dd if=/dev/zero of='{mount}/filler' bs=4k 2>/dev/null; " + START_SCRIPT.format(args=args, disk=mount)
        result = on_small_disk(fill, mount, "1m", tmp_path)
        expected = "no space left"
    assert "rc=2" in result.stdout, result.stdout + result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    listing = result.stdout.split("rc=2", 1)[1].split()
    assert listing == ([] if disk == "read-only" else ["filler"])


def test_runs_dir_that_is_a_file_and_unwritable_places(tmp_path: Path) -> None:
    """14. --runs-dir naming a file; a run name whose folder would sit below a file: exit 2, untouched."""
    blocker = tmp_path / "runs_file"
    blocker.write_text("mine")
    results = [cli_here(*args, cwd=tmp_path) for args in (
        ("train", *TINY, "--runs-dir", "runs_file", "--name", "x"),
        ("train", *TINY, "--runs-dir", "runs_file/below", "--name", "x"),
        ("study", "run", str(write_study(tmp_path)), "--dir", "runs_file"))]
    for result in results:
        assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr, \
            result.output
    assert blocker.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["runs_file", "s.yaml"]


def write_study(directory: Path) -> Path:
    path = directory / "s.yaml"
    path.write_text("base: {model: lenet5, data: {name: digits, train_limit: 64}, epochs: 1}\n")
    return path


# ---------------------------------------------------------------------------------- 15. hostile input
HOSTILE_NAMES = ["..", "../..", "../../victim", "/tmp/cnnlab-evil", "VICTIM", "a/b", "x" * 300, "résumé",
                 "tab\tname", "new\nline", ".hidden", "-rf", "", "a\\b"]
HOSTILE_VALUES = ["lr=inf", "lr=nan", "lr=-inf", "weight_decay=inf", "train.divergence_threshold=inf",
                  "epochs=1e9999", "model=!!python/object/apply:os.system ['touch PWNED']"]


def surroundings(tmp_path: Path) -> tuple[Path, Path]:
    """home/runs (empty), home/sibling.txt, victim/precious.txt: the things nothing may touch."""
    runs = tmp_path / "home" / "runs"
    runs.mkdir(parents=True)
    (tmp_path / "home" / "sibling.txt").write_text("keep me")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me too")
    return runs, victim


def test_hostile_names_and_values_in_the_program(tmp_path: Path) -> None:
    """15, as a user types it: `..` with --overwrite (which once replaced the runs folder's parent),
    `../../victim` with --overwrite (which once wiped a folder outside), 300 characters, unicode, lr=inf and
    a YAML python tag in a config file: exit 2 each, one message, nothing written or deleted anywhere."""
    runs, victim = surroundings(tmp_path)
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    before = tree(tmp_path)
    commands = [("train", *TINY, "--runs-dir", str(runs), f"--name={name}", "--overwrite")
                for name in ("..", "../../victim", "x" * 300, "résumé")]
    commands += [("train", *TINY, "--runs-dir", str(runs), "lr=inf"), ("train", str(evil), "--runs-dir", str(runs)),
                 ("study", "run", str(evil), "--dir", str(tmp_path / "study"))]
    real = {1, 5}  # `../../victim --overwrite` and the YAML tag through the program itself; the rest (and the
    # whole matrix, in the next test) through its entry point in this process
    results = [cli(*args, cwd=runs.parent) if i in real else cli_here(*args, cwd=runs.parent)
               for i, args in enumerate(commands)]
    for args, result in zip(commands, results):
        assert result.returncode == 2 and result.stderr.startswith("error: "), (args, result.output)
        assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before and not marker.exists() and not any(runs.iterdir())


def test_every_hostile_name_and_value_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    """15, the whole matrix through the CLI's entry point in this process: every name with and without
    --overwrite, for train, study --dir and tune --dir, and every value: exit 2, nothing touched."""
    from cnnlab.cli import main

    runs, victim = surroundings(tmp_path)
    monkeypatch.chdir(runs.parent)
    study = write_study(tmp_path)
    before = tree(tmp_path)
    names = [str(victim) if name == "VICTIM" else name for name in HOSTILE_NAMES]
    commands = [["train", *TINY, "--runs-dir", str(runs), f"--name={name}", *extra]
                for name in names for extra in ((), ("--overwrite",))]
    commands += [["train", *TINY, "--runs-dir", str(runs), value.replace("PWNED", str(tmp_path / "PWNED"))]
                 for value in HOSTILE_VALUES]
    commands += [["study", "run", str(study), f"--dir={victim}"], ["tune", "grid", *TINY, "--grid", "lr=0.1,0.2",
                                                                    f"--dir={victim}"]]
    for args in commands:
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: "), (args, err)
    assert tree(tmp_path) == before and not (tmp_path / "PWNED").exists() and not any(runs.iterdir())


def test_overwrite_deletes_only_cnnlab_runs(tmp_path: Path) -> None:
    """15. --overwrite on a folder of someone else's files inside the runs directory: refused, untouched;
    on a cnnlab run: replaced."""
    own = tmp_path / "runs" / "notes"
    own.mkdir(parents=True)
    (own / "thesis.tex").write_text("years of work")
    refused = cli_here("train", *TINY, "epochs=1", "--name", "notes", "--overwrite", cwd=tmp_path)
    first = cli_here("train", *TINY, "epochs=1", "--name", "mine", "--quiet", cwd=tmp_path)
    assert refused.returncode == 2 and "not a cnnlab run directory" in refused.stderr
    assert (own / "thesis.tex").read_text() == "years of work"
    assert first.returncode == 0
    again = cli_here("train", *TINY, "epochs=1", "--name", "mine", "--overwrite", "--quiet", cwd=tmp_path)
    assert again.returncode == 0


# ------------------------------------------------------------------------------- YAML (issue 22, section 2)
def laughs(levels: int, width: int = 10) -> str:
    """A "billion laughs": anchors a0..a{levels-1}, each `width` aliases of the one before (width^levels values)."""
    text = "l0: &a0 [" + ", ".join(["lol"] * width) + "]\n"
    for level in range(1, levels):
        text += f"l{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]\n"
    return text


def test_yaml_bombs_and_huge_yaml_files_are_one_message_and_exit_2(tmp_path: Path) -> None:
    """A 1 KB alias bomb as a config value grew to 23.5 GB; in a study file it ended as 'out of memory: lower
    batch_size'. Here 10^7 values (enough to show the old expansion, not to hurt the machine), in a config,
    a study's variation, a search space and a run's config.yaml; and 50 MB files (sparse: no disk used): exit 2
    each, one message naming the file and the limit, memory bounded."""
    bomb = laughs(7)
    (tmp_path / "bomb.yaml").write_text(bomb + "model: {name: convnet, filters: *a6}\n")
    (tmp_path / "study.yaml").write_text(bomb + "base: {model: lenet5}\nvariations:\n  wide: {model.filters: *a6}\n")
    (tmp_path / "search.yaml").write_text(bomb + "base: {model: lenet5}\nspace:\n  model.fc: {categorical: *a6}\n")
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(bomb + "model: {name: convnet, filters: *a6}\n")
    (run / "run.json").write_text('{"format": "cnnlab.run/2", "status": "interrupted"}')
    for name in ("huge_config.yaml", "huge_study.yaml"):
        with open(tmp_path / name, "wb") as handle:
            handle.truncate(50 << 20)
    commands = {"bomb.yaml": ("train", "bomb.yaml"), "study.yaml": ("study", "run", "study.yaml"),
                "search.yaml": ("tune", "search", "search.yaml"), "config.yaml": ("train", "--resume", str(run)),
                "huge_config.yaml": ("train", "huge_config.yaml"), "huge_study.yaml": ("study", "run", "huge_study.yaml")}
    results = cli_all(*commands.values(), cwd=tmp_path, timeout=120)
    for (name, args), result in zip(commands.items(), results):
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.output[-2000:])
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        line = errors[0] if len(errors) == 1 else result.stderr
        assert len(line) < 400, (args, line[:2000])  # one line, not the values written out
        assert name in line and result.max_rss_mb < RSS_LIMIT_MB, (args, line, result.max_rss_mb)
        limit = "io.LIMITS.yaml_bytes" if name.startswith("huge") else "io.LIMITS.yaml_nodes"
        assert limit in line, (args, line)
    assert not (tmp_path / "runs" / "bomb").exists() and sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["old"]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_a_signal_while_a_config_is_read_ends_the_program_at_once(tmp_path: Path, sig: int, code: int) -> None:
    """`cnnlab train` read its config after it began to watch for signals, which only ask a run to stop: a
    signal during a long read (a 50 MB file took 20 s) was held until the run had trained a step. The config
    here is a FIFO, so the read is caught in the middle: nothing is written yet, so the program simply ends."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    process = start("train", str(fifo), "--runs-dir", "runs", cwd=tmp_path)
    writer = None
    deadline = time.monotonic() + 120
    while writer is None:  # the open succeeds once cnnlab has the FIFO open for reading
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
    try:
        os.write(writer, b"model: lenet5\ndata: digits\n")  # half a file: cnnlab reads on, waiting for the rest
        time.sleep(0.5)
        process.send_signal(sig)
        signalled = time.monotonic()
        result = finish(process, timeout=60)
        waited = time.monotonic() - signalled
    finally:
        os.close(writer)
    assert result.returncode == code and waited < 5, (result.returncode, waited, result.output)
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_a_signal_while_a_study_is_checked_stops_it_before_anything_is_written(tmp_path: Path) -> None:
    """Checking every run of a study against its data (10,000 variations: 50 s) ignored SIGTERM until it was
    done. 300 variations, each with its own data setting (each read and checked): stopped at the next run."""
    lines = ["base: {model: lenet5, data: digits, epochs: 1}", "variations:"]
    lines += [f"  v{i}: {{data.train_limit: {200 + i}}}" for i in range(300)]
    (tmp_path / "many.yaml").write_text("\n".join(lines) + "\n")
    process = start("study", "run", "many.yaml", "--dir", "out", cwd=tmp_path)
    first = process.stdout.readline()  # printed once the study is planned, as the checking starts
    assert "301 runs" in first, (first, process.communicate())
    time.sleep(3)  # (the first run's check also loads scikit-learn and the digits: a few seconds on a busy machine)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    result = finish(process, timeout=120)
    waited = time.monotonic() - signalled
    # the old code checked on (~0.1 s a run), wrote the plan, and trained a step of the first run before it stopped
    assert result.returncode == 130 and waited < 10, (result.returncode, waited, result.output)
    assert "study interrupted" in result.stdout and not (tmp_path / "out").exists()
