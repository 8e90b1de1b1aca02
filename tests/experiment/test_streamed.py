"""An ImageFolder data set read from disk while training (isample/experiment/streamed.py): its checks
before any work, and every method's training stage and the timing stage on it, at the images' own
size and resized, with two DataLoader workers."""

import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from isample.experiment.data import DataError
from isample.experiment.prepared import load_prepared
from isample.experiment.streamed import prepare_image_folder
from tests.common import REPO, make_params

CLASSES = ["bird", "cat", "deer", "frog"]


def image_folder(root, per_class=(24, 8), size=32, seed=0):
    """train/<class>/*.jpg and test/<class>/*.jpg: one colour per class with noise, learnable."""
    generator = np.random.default_rng(seed)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = np.array([60 * label, 255 - 60 * label, 120])
            for i in range(count):
                pixels = np.clip(colour + generator.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg")
    return root


def test_a_tree_and_its_archive_index_alike_and_load_back(tmp_path):
    tree = image_folder(tmp_path / "tree")
    with tarfile.open(tmp_path / "images.tar.gz", "w:gz") as archive:
        archive.add(tree, arcname="images")  # one folder inside the archive
    from_tree = prepare_image_folder(tree, 0, 40, 8, tmp_path / "unpacked-tree")
    from_archive = prepare_image_folder(tmp_path / "images.tar.gz", 0, 40, 8, tmp_path / "unpacked")
    assert from_tree.classes == from_archive.classes == CLASSES
    assert from_tree.train_files == from_archive.train_files and len(from_tree.train_files) == 40  # stratified
    assert torch.equal(torch.bincount(from_tree.train_y), torch.full((4,), 10)) and from_tree.test_size == 32
    assert len(from_tree.curve_test) == 8 and from_tree.content_hash == from_archive.content_hash
    x, y = from_archive.train_dataset()[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and y == 0
    resized = prepare_image_folder(tree, 48, 0, 0, tmp_path / "unused")
    assert resized.image_shape == (3, 48, 48) and resized.content_hash != from_tree.content_hash
    from isample.experiment.prepared import save_prepared

    save_prepared(resized, tmp_path / "prepared.pt")
    again = load_prepared(tmp_path / "prepared.pt")
    assert again.train_files == resized.train_files and torch.equal(again.mean, resized.mean)
    # Indexed again and saved again: the same bytes, so DVC's hash of prepare holds on a fresh clone.
    save_prepared(prepare_image_folder(tree, 48, 0, 0, tmp_path / "unused"), tmp_path / "again.pt")
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "prepared.pt").read_bytes()


def break_one(root):
    (root / "train" / "cat" / "0003.jpg").write_bytes(b"not an image at all")


def empty_class(root):
    shutil.rmtree(root / "train" / "deer")
    (root / "train" / "deer").mkdir()


def extra_test_class(root):
    (root / "test" / "horse").mkdir()
    shutil.copy(root / "test" / "cat" / "0000.jpg", root / "test" / "horse" / "0000.jpg")


def mixed_sizes(root):
    Image.new("RGB", (40, 30)).save(root / "train" / "cat" / "0005.jpg")


@pytest.mark.parametrize(
    "damage, said",
    [
        (break_one, r"^cannot read image .*train/cat/0003\.jpg: cannot identify image file"),
        (empty_class, r"^class folder .*train/deer has no images"),
        (extra_test_class, r"train and test classes differ \(only in train: \[\], only in test: \['horse'\]\)"),
        (
            mixed_sizes,
            r"^images differ in size \(train/bird/0000\.jpg: 32x32, train/cat/0005\.jpg: 40x30\): set data\.image_size",
        ),
        (lambda root: shutil.rmtree(root / "test"), r"has no train/<class>/ and test/<class>/ folders"),
    ],
)
def test_bad_data_is_one_line_before_any_work(tmp_path, damage, said):
    root = image_folder(tmp_path / "images", per_class=(6, 2))
    damage(root)
    with pytest.raises(DataError, match=said) as caught:
        prepare_image_folder(root, 0, 0, 0, tmp_path / "unpacked")
    assert "\n" not in str(caught.value)


def test_a_missing_path_and_bad_settings_are_one_line(tmp_path):
    from isample.experiment.config import ConfigError

    with pytest.raises(DataError, match=r"^data.path '.*nowhere' does not exist"):
        prepare_image_folder(tmp_path / "nowhere", 0, 0, 0, tmp_path / "unpacked")
    (tmp_path / "notes.tar.gz").write_bytes(b"plain text")
    with pytest.raises(DataError, match=r"notes.tar.gz is damaged or not a tar archive"):
        prepare_image_folder(tmp_path / "notes.tar.gz", 0, 0, 0, tmp_path / "unpacked")
    with pytest.raises(ConfigError, match=r"^params.yaml: data: data.name = 'imagefolder' needs data.path"):
        make_params({"data": {"name": "imagefolder", "path": ""}})
    with pytest.raises(
        ConfigError, match=r"^params.yaml: data.workers = -1: Input should be greater than or equal to 0"
    ):
        make_params({"data": {"workers": -1}})


@pytest.mark.parametrize("image_size", [0, 48])
def test_every_method_trains_from_disk_and_the_timing_sheet_shows_loading(tmp_path, monkeypatch, image_size):
    """The stages' own code (prepare, train for every method, timing) in a copy of the project's
    params, on a tree read by two workers: records for all, and data loading timed as its own phase."""
    from stages import prepare, tables, timing, train
    from stages.common import load_params

    image_folder(tmp_path / "images")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(
        name="imagefolder", path="images", image_size=image_size, workers=2, train_subset=0, test_subset=16
    )
    raw["train"].update(budgets=["1s"], device="cpu", eval_batch_size=64, checkpoint_every="10s")
    raw["compare"]["methods"] = ["reuse", "selective_backprop", "infobatch", "rho_loss"]
    raw["compare"]["forced_is"] = False  # IS forced on reads the data as IS under the rule does: one record each
    raw["methods"]["rho_loss"]["selection"] = 0.25  # 64 candidates of the 96 images
    raw["irreducible"]["epochs"] = 1
    raw.update(batch_size=16)
    raw["timing"].update(presamples=[2, 3], warmup=1, iterations=2)
    raw["methods"]["selective_backprop"]["sampling_min"] = 0.2  # tiny data: keep it from idling
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    params = load_params()
    prepare.main(params)
    tables.main(params, "rho_loss")  # its IL models read the images from disk too
    for method in params.compared_methods:
        train.main(params, method)
        records = [
            r for r in (tmp_path / "results" / method).glob("imagefolder.*.1s.0.xlsx") if "-charged" not in r.name
        ]
        assert len(records) == 1, method
        epochs = pd.read_excel(records[0], sheet_name="epochs")
        info = dict(pd.read_excel(records[0], sheet_name="params").astype(str).values)
        assert info["status"] == "completed" and info["train_examples"] == "96" and info["test_examples"] == "32"
        assert epochs["test_accuracy"].notna().all() and (epochs["time_data_loading"] > 0).all(), method
    timing.main(params)
    per_ratio = pd.read_excel(tmp_path / "results" / "timing.xlsx", sheet_name="per_ratio")
    # Loading is timed in every configuration (how it grows with B needs more than 16-example requests
    # on two workers to show above the noise: README, "Your own data and model").
    assert (per_ratio["time_data_loading"] > 0).all() and set(per_ratio["run"]) == {
        "uniform",
        "upper_bound",
        "upper_bound_is_off",
    }


def test_a_run_stopped_by_sigterm_leaves_no_worker_process_behind(tmp_path, monkeypatch):
    """SIGTERM to a training stage reading from disk with two DataLoader workers, mid-run: the stage
    saves its checkpoint and exits 143, and every process it started has ended with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from stages import prepare
    from stages.common import load_params

    image_folder(tmp_path / "images", per_class=(200, 8))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(name="imagefolder", path="images", image_size=0, workers=2, train_subset=0, test_subset=16)
    raw["train"].update(budgets=["120s"], device="cpu", eval_batch_size=64, checkpoint_every="1h")
    raw.update(batch_size=16)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    prepare.main(load_params())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "stages.train", "--method", "uniform"]
    stage = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started: set[int] = set()
        for _ in range(600):  # its loading workers up, then a few seconds of training
            started |= {child.pid for child in psutil.Process(stage.pid).children(recursive=True)}
            if len(started) >= 2 or stage.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(3)
        assert stage.poll() is None and len(started) >= 2, stage.communicate()
        stage.send_signal(signal.SIGTERM)
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            stage.kill()
    assert stage.returncode == 143 and "saved checkpoints/uniform/120s.seed0.pt" in stderr, stderr[-2000:]
    alive = [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, alive
