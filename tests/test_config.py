from pathlib import Path

import pytest

import cnnlab.api  # noqa: F401  (data, models and optim fill the config's registries: this file also runs alone)
from cnnlab.config import config_hash, diff, from_dict, load_config, to_dict
from cnnlab.errors import ConfigError
from cnnlab.options import coerce


def test_aliases_and_dotted_overrides() -> None:
    config = load_config(None, ["model=convnet", "data=fashion-mnist", "epochs=15", "lr=1e-3",
                                "model.filters=[64,128,256]", "optimizer=adam", "data.shuffle=false"])
    assert config.model.name == "convnet" and config.model.options["filters"] == (64, 128, 256)
    assert config.data.name == "fashion-mnist" and config.data.shuffle is False
    assert config.train.epochs == 15 and config.optim.name == "adam" and config.optim.lr == 1e-3
    assert config.optim.options["betas"] == (0.9, 0.999)


def test_optimizer_default_learning_rate_applies_when_not_given() -> None:
    adam = load_config(None, ["optimizer=adam"]).optim
    assert (adam.lr, adam.weight_decay) == (1e-3, 0.0)
    momentum = load_config(None, []).optim
    assert (momentum.name, momentum.lr, momentum.weight_decay) == ("momentum", 0.02, 5e-4)
    assert load_config(None, ["optimizer=adam", "lr=0.01", "weight_decay=0.1"]).optim.weight_decay == 0.1


def test_round_trip_and_hash() -> None:
    config = load_config(None, ["model=lenet5", "model.activation=relu", "schedule=step", "schedule.gamma=0.5"])
    again = from_dict(to_dict(config))
    assert again == config and config_hash(again) == config_hash(config)
    assert config_hash(load_config(None, ["device=cpu"])) == config_hash(load_config(None, []))
    assert diff(config, load_config(None, ["model=lenet5", "model.activation=relu", "schedule=step"])) == [
        "schedule.gamma: 0.5 -> 0.1"]


@pytest.mark.parametrize("override,pattern", [
    ("epoch=3", r"unknown key 'epoch'.*did you mean 'epochs'"),
    ("train.epoch=3", r"unknown key 'train.epoch'.*did you mean 'train.epochs'"),
    ("epochs=abc", r"train.epochs \(override 'epochs=abc'\) must be int, got 'abc'"),
    ("epochs=0", r"train.epochs must be > 0, got 0"),
    ("model=lenet", r"unknown model 'lenet' \(override 'model=lenet'\); did you mean 'lenet5'\? Valid models: alexnet, "),
    ("optimizer=adm", r"unknown optimizer 'adm' .*; did you mean 'adam'"),
    ("data=fashion_mnist", r"unknown dataset 'fashion_mnist' .*; did you mean 'fashion-mnist'"),
    ("model.filterz=[1]", r"'model.filterz' .* is not an option of model 'convnet'; did you mean 'model.filters'"),
    ("data.normalize=zscore", r"data.normalize .* must be one of standard, centered, unit, imagenet"),
    ("lr=-1", r"optim.lr must be > 0"),
    ("nonsense", r"must look like key=value"),
])
def test_bad_overrides_say_what_and_how(override: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_yaml_errors_give_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  name: convnet\n  filters: [64, 128, 256]\ntrain:\n  epocs: 3\n")
    with pytest.raises(ConfigError, match=rf"unknown key 'train.epocs' \({path}:5\).*did you mean 'train.epochs'"):
        load_config(path)
    path.write_text("train:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: invalid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model: lenet5\ndata:\n  name: digits\n  normalize: centered\nepochs: 4\nseed: 7\n")
    config = load_config(path, ["epochs=6"])
    assert config.model.name == "lenet5" and config.data.normalize == "centered"
    assert config.train.epochs == 6 and config.seed == 7


@pytest.mark.parametrize("value,annotation,expected", [
    ("0.1", float, 0.1), ("1e-3", float, 1e-3), (3, float, 3.0), ("true", bool, True), ("off", bool, False),
    ("7", int, 7), (8.0, int, 8), ([1, "2"], tuple[int, ...], (1, 2)), (64, tuple[int, ...], (64,)),
    ("null", int | None, None), ("5", int | None, 5), ([0.9, 0.99], tuple[float, float], (0.9, 0.99)),
])
def test_coerce(value, annotation, expected) -> None:
    assert coerce(value, annotation, "k") == expected


@pytest.mark.parametrize("value,annotation", [(1.5, int), ("maybe", bool), (True, int), ([1, 2, 3], tuple[float, float])])
def test_coerce_refuses(value, annotation) -> None:
    with pytest.raises(ConfigError, match="^k must be"):
        coerce(value, annotation, "k")


def test_augmentation_recipe_comes_from_the_dataset_and_is_written_out() -> None:
    fashion = load_config(None, ["data=fashion-mnist"]).augment
    assert (fashion.enabled, fashion.hflip, fashion.crop_padding) == (True, True, 0)
    mnist = load_config(None, ["data=mnist"]).augment
    assert (mnist.hflip, mnist.crop_padding) == (False, 0)  # digits are never mirrored
    custom = load_config(None, ["data=fashion-mnist", "augment.crop_padding=4"]).augment
    assert (custom.hflip, custom.crop_padding) == (True, 4)
    off = load_config(None, ["data=cifar10", "augment=false"]).augment
    assert (off.hflip, off.crop_padding) == (False, 0)
    assert to_dict(load_config(None, ["data=cifar10"]))["augment"] == {
        "enabled": True, "hflip": True, "crop_padding": 4, "rotation": 0.0, "scale": [1.0, 1.0], "color_jitter": 0.0,
        "erasing": 0.0, "pca_lighting": 0.0, "pca_lighting_scale": "sqrt", "mixup_alpha": 0.0, "cutmix_alpha": 0.0,
        "mix_prob": 1.0, "mix_switch_prob": 0.5}
    caltech = load_config(None, ["data=caltech101"]).augment
    assert caltech.scale == (0.25, 1.0) and caltech.hflip is True


def test_a_resolved_config_pickles_and_copies_and_its_options_stay_read_only() -> None:
    """A config crosses to a spawned process (pickle) and through copy.deepcopy; its component options
    (once a MappingProxyType, which does neither) stay read-only."""
    import copy
    import pickle

    config = load_config(None, ["model=lenet5", "data=digits", "optim.name=adam"])
    assert pickle.loads(pickle.dumps(config)) == config and copy.deepcopy(config) == config
    assert dict(config.model.options) == {"activation": "tanh", "pooling": "avg"}
    with pytest.raises(TypeError):
        config.model.options["activation"] = "relu"  # type: ignore[index]


# ------------------------------------------------------------------------------- YAML, bounded (issue 22)
def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """Each anchor a list of `width` aliases of the one before: width^levels values in ~0.4 KB."""
    text = "lol: &a0 [" + ", ".join(['"lol"'] * width) + "]\n"
    for level in range(1, levels):
        text += f"l{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]\n"
    return text


def test_a_repeated_key_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: `epochs: 1` then `epochs: 500` trained 500 epochs."""
    path = tmp_path / "run.yaml"
    path.write_text("model: lenet5\nepochs: 1\ndata: digits\nepochs: 500\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: key 'epochs' appears twice in one mapping \(first at line 2\)"):
        load_config(path)
    path.write_text("train:\n  epochs: 1\n  batch_size: 8\n  epochs: 500\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: key 'epochs' appears twice"):
        load_config(path)
    path.write_text("model:\n  filters: [8]\n  filters: [16]\n")  # inside a component's options too
    with pytest.raises(ConfigError, match=rf"^{path}:3: key 'filters' appears twice"):
        load_config(path)
    path.write_text("epochs: 1\ntrain:\n  epochs: 500\n")  # one key in two spellings
    with pytest.raises(ConfigError, match=rf"'train.epochs' is given twice: {path}:1 and {path}:3"):
        load_config(path)
    from cnnlab.config.yaml_file import load_yaml  # a merge key overridden is YAML's intent, not a repeat
    assert load_yaml("a: &a {x: 1, y: 2}\nb: {<<: *a, y: 3}\n", "f").data["b"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("python_parser", [False, True], ids=["libyaml", "python"])
def test_alias_bombs_and_deep_nesting_are_refused_before_they_are_expanded(python_parser: bool, monkeypatch,
                                                                          tmp_path: Path) -> None:
    """A 1 KB billion laughs as a config value grew to 23.5 GB: now refused while it is composed, in
    milliseconds, naming the file, the line and the limit. Both parsers (libyaml's and PyYAML's own)."""
    import time

    from cnnlab.config import yaml_file

    if python_parser:
        monkeypatch.setattr(yaml_file, "CParser", None)
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs() + "model: {name: convnet, filters: *a8}\n")
    assert path.stat().st_size < 1024
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: more than 250,000 values with its aliases written out, "
                                          r"the limit for one YAML file \(io.LIMITS.yaml_nodes\)"):
        load_config(path)
    assert time.perf_counter() - started < 1.0
    path.write_text("model:\n  filters: " + "[" * 100 + "8" + "]" * 100 + "\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: more than 64 levels of nesting, .*\(io.LIMITS.yaml_depth\)"):
        load_config(path)
    path.write_text("model:\n  filters: &loop [8, *loop]\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: alias \*loop repeats the part that contains it"):
        load_config(path)
    path.write_text("epochs: 1" + "0" * 5000 + "\n")  # Python's own bound on digits: a message, not a ValueError
    with pytest.raises(ConfigError, match=rf"^{path}:1: invalid YAML: an integer of 5,001 digits"):
        load_config(path)
    # on the command line too: a bomb is one argument of 0.4 KB
    flow = "{" + billion_laughs().strip().replace("\n", ", ") + "}"
    with pytest.raises(ConfigError, match=r"^override 'model.filters=\{lol: .*': more than 250,000 values"):
        load_config(None, ["model.filters=" + flow])


def test_a_yaml_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 50 MB YAML file took minutes to parse; its size is checked first (a sparse file: no disk used)."""
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(50 << 20)
    with pytest.raises(ConfigError, match=rf"^{path}: a config file of 50.0 MiB is over the limit of 4 MiB for one "
                                          r"YAML file \(io.LIMITS.yaml_bytes\)"):
        load_config(path)


def test_a_number_far_beyond_any_budget_is_refused_in_every_spelling() -> None:
    """`epochs=1e12` was refused (YAML 1.1 reads it as text) but `epochs=1000000000000` trained."""
    for spelling in ("1000000000000", "1e12", "1.0e12"):
        with pytest.raises(ConfigError, match=r"^train.epochs must be at most 1,000,000 \(far beyond any training "
                                              r"budget: a typo\?\), got 1000000000000$"):
            load_config(None, [f"epochs={spelling}"])
    assert load_config(None, ["epochs=1e3"]).train.epochs == 1000 and load_config(None, ["epochs=1e6"]).train.epochs
    with pytest.raises(ConfigError, match="must be int, got '1.5e0'"):
        load_config(None, ["epochs=1.5e0"])
    with pytest.raises(ConfigError, match="seed must be a 64-bit integer"):
        load_config(None, [f"seed={2**64}"])


# ------------------------------------------------------------------------------- the hash and the file
@pytest.mark.parametrize("overrides,expected", [
    ([], "802f6deb24870fbc"),
    (["device=cpu", "train.tensorboard=true", "train.keep_epochs=[1]"], "802f6deb24870fbc"),  # not computation
    (["stop.patience=3"], "802f6deb24870fbc"),  # stop.* without a criterion changes nothing
    (["optimizer=adam"], "e6d4aaa49594a77d"),
    (["optimizer=adam", "lr=1e-3"], "e6d4aaa49594a77d"),  # adam's own default lr: the same computation
    (["model=lenet5", "data=digits", "epochs=2"], "c80767d5166c79f6"),
    (["model=lenet5", "model.activation=relu", "schedule=step", "schedule.gamma=0.5"], "db91c1437e164a14"),
    (["data=cifar10", "optimizer=adam", "stop.criterion=patience", "stop.patience=3", "augment.hflip=false"],
     "534bcb5e09cb33c4"),
    (["data=fashion-mnist", "augment.enabled=false", "seed=3", "train.divergence_threshold=null"], "fd652080e62f3c87"),
])
def test_config_hashes_of_fixed_configs_never_drift(overrides: list[str], expected: str) -> None:
    """Studies find their finished runs by these hashes: a change here makes every existing study refuse its
    runs. A new setting at its default must leave them as they are (the hash is of non-default values)."""
    assert config_hash(load_config(None, overrides)) == expected


def test_a_setting_at_its_default_is_not_part_of_the_hash() -> None:
    from cnnlab.config.saved import defaults_for, settings_hash

    config = load_config(None, ["model=lenet5", "epochs=3"])
    values, defaults = _flat(to_dict(config)), defaults_for(config)
    assert settings_hash(values, defaults) == config_hash(config)
    added = settings_hash({**values, "train.new_setting": 0.5}, {**defaults, "train.new_setting": 0.5})
    assert added == config_hash(config)  # a key cnnlab gains later, at its default
    assert settings_hash({**values, "train.new_setting": 0.7}, {**defaults, "train.new_setting": 0.5}) != added


def _flat(data: dict) -> dict:
    return {f"{k}.{key}" if isinstance(v, dict) else k: value
            for k, v in data.items() for key, value in (v.items() if isinstance(v, dict) else [(None, v)])}


def test_save_config_writes_atomically_and_only_when_the_config_changed(tmp_path: Path, monkeypatch) -> None:
    from cnnlab.config import read_config, save_config
    from cnnlab.errors import StorageError

    path = tmp_path / "config.yaml"
    config = load_config(None, ["model=lenet5", "epochs=3"])
    assert save_config(config, path) and read_config(path) == config
    before = path.stat()
    assert not save_config(config, path)  # the same config: the file is not touched
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cnnlab.io.files.os.fsync", disk_full)  # the new text cannot be made durable
    with pytest.raises(StorageError, match="no space left"):
        save_config(load_config(None, ["model=lenet5", "epochs=4"]), path)
    monkeypatch.undo()
    assert read_config(path) == config  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left


def test_an_empty_or_cut_off_config_yaml_is_an_error_never_the_default_config(tmp_path: Path) -> None:
    from cnnlab.config import read_config, save_config

    path = tmp_path / "config.yaml"
    save_config(load_config(None, ["model=lenet5", "epochs=3"]), path)
    text = path.read_text()
    body = text.split("\n", 1)[1].rsplit("# end", 1)[0]  # the YAML alone, as cnnlab wrote it before the header
    cut = text[: text.index("  lr:")]  # the file cut in the optim section
    no_train = r"it is cut off or incomplete \(no train\)"
    for damaged, what in [("", "it is empty"), ("\n\n", "it is empty"), (cut, "it is cut off"),
                          (text[: len(text) - 3], "it is cut off"), (text.replace("\ntrain:", "\ntrains:"), no_train),
                          (body[: body.index("\ntrain:")], no_train), ("[1, 2]\n", "it is not a mapping")]:
        path.write_text(damaged)
        with pytest.raises(ConfigError, match=f"{path}: the run's saved config is damaged: {what}"):
            read_config(path)
    path.write_text(body)  # an older run's file (no header): whole, so it reads
    assert read_config(path).train.epochs == 3
