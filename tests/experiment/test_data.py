import tarfile

import pytest
import torch

from isample.experiment.data import (
    BatchTransform,
    DataError,
    load_dataset,
    stratified_subset,
    subset,
)
from isample.experiment.prepared import load_prepared, save_prepared
from tests.common import CIFAR10_CLASSES, SHARED_DATA, make_archive, synthetic_data


def test_tiny_archive_loads_with_sorted_class_labels(tmp_path):
    shuffled = CIFAR10_CLASSES[::-1]
    make_archive(tmp_path / "cifar10-tiny.tar.gz", shuffled)
    make_archive(tmp_path / "cifar100-other.tar.gz", ["x"] * 1)  # must not be taken for cifar10
    data = load_dataset("cifar10", tmp_path)
    assert data.classes == CIFAR10_CLASSES
    assert data.train_x.shape == (30, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (20, 3, 32, 32)
    assert torch.equal(torch.bincount(data.train_y), torch.full((10,), 3))
    # Pixel values survive (PNG is lossless): image 1 of 'truck' (label 9) was filled with 10 * (its
    # position in the archive's class order) + 1.
    truck = data.train_x[data.train_y == 9]
    assert int(truck[1].float().mean()) == 10 * shuffled.index("truck") + 1
    assert data.source.endswith("cifar10-tiny.tar.gz")
    assert len(data.content_hash) == 64


def test_image_folder_tree_loads(tmp_path):
    make_archive(tmp_path / "a.tar.gz", CIFAR10_CLASSES, prefix="cifar10/")
    with tarfile.open(tmp_path / "a.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    (tmp_path / "a.tar.gz").unlink()
    assert load_dataset("cifar10", tmp_path).train_x.shape == (30, 3, 32, 32)


def test_missing_data_says_what_and_where(tmp_path):
    with pytest.raises(DataError, match=rf"no cifar100 data under {tmp_path}.*cifar-100-python.*cifar100\*"):
        load_dataset("cifar100", tmp_path)


def test_damaged_archive_and_wrong_class_count_are_clear_errors(tmp_path):
    (tmp_path / "cifar10.tar.gz").write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="damaged"):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "cifar10.tar.gz").unlink()
    make_archive(tmp_path / "cifar10.tar.gz", CIFAR10_CLASSES[:3])
    with pytest.raises(DataError, match="3 training classes, expected 10"):
        load_dataset("cifar10", tmp_path)


def test_damaged_torchvision_files_are_a_clear_error(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="torchvision's cifar10 files"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset():
    with pytest.raises(DataError, match="known: cifar10, cifar100"):
        load_dataset("mnist", ".")


def test_stratified_subset_is_balanced_and_deterministic():
    labels = torch.arange(1000) % 10
    chosen = stratified_subset(labels, 95, seed=1)
    counts = torch.bincount(labels[chosen], minlength=10)
    assert len(chosen) == 95 and counts.max() - counts.min() <= 1
    assert torch.equal(chosen, stratified_subset(labels, 95, seed=1))
    assert len(stratified_subset(labels, 0)) == 1000


def test_subset_recomputes_statistics_and_round_trips(tmp_path):
    whole = synthetic_data()
    data = subset(whole, 40, 20)
    # The whole test set is kept for the final accuracy; 20 of it, stratified, for the per-epoch curves.
    assert len(data.train_x) == 40 and torch.equal(data.test_x, whole.test_x) and len(data.curve_test) == 20
    assert torch.equal(torch.bincount(data.test_y[data.curve_test]), torch.full((4,), 5))
    assert subset(whole, 40, 30).content_hash != data.content_hash  # the curve subset is part of the data
    save_prepared(data, tmp_path / "p.pt")
    save_prepared(subset(whole, 40, 20), tmp_path / "again.pt")  # the same bytes: DVC's hash holds
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "p.pt").read_bytes()
    loaded = load_prepared(tmp_path / "p.pt")
    assert torch.equal(loaded.train_x, data.train_x) and loaded.content_hash == data.content_hash
    assert torch.equal(loaded.curve_test, data.curve_test)
    torch.testing.assert_close(loaded.mean, data.train_x.float().div(255).mean((0, 2, 3)))


def test_load_prepared_missing_is_clear(tmp_path):
    with pytest.raises(DataError, match="run the prepare stage"):
        load_prepared(tmp_path / "none.pt")


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", ["pickle", "garbage"])
def test_prepared_data_is_read_safely_and_a_bad_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "cifar10.pt"
    if content == "pickle":  # would run code if read with weights_only=False
        torch.save({**synthetic_data().to_dict(), "payload": Exploit()}, path)
    else:
        path.write_bytes(b"not a torch file")
    with pytest.raises(DataError) as caught:
        load_prepared(path)
    assert "\n" not in str(caught.value) and "damaged or foreign" in str(caught.value)
    assert "this must never run" not in capsys.readouterr().out
    good = tmp_path / "good.pt"
    save_prepared(synthetic_data(), good)
    assert load_prepared(good).classes == synthetic_data().classes  # strings, lists and tensors load


def test_normalisation_without_augmentation():
    data = synthetic_data(n_train=400)
    x = BatchTransform(data.mean, data.std)(data.train_x)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)


def test_augmentation_is_a_padded_crop_possibly_flipped():
    images = torch.randint(1, 256, (16, 3, 32, 32), dtype=torch.uint8)
    transform = BatchTransform(torch.zeros(3), torch.ones(3), augment=True, generator=torch.Generator().manual_seed(0))
    out = (transform(images) * 255).round().to(torch.uint8)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    shifted = 0
    for image, original in zip(out, padded):
        candidates = [
            window
            for dy in range(9)
            for dx in range(9)
            for window in (original[:, dy : dy + 32, dx : dx + 32], original[:, dy : dy + 32, dx : dx + 32].flip(2))
        ]
        assert any(torch.equal(image, c) for c in candidates)
        shifted += not torch.equal(image, original[:, 4:36, 4:36])
    assert shifted >= 12  # almost every image moved or flipped


@pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg.tar.gz").is_file(), reason="needs ../shared/data")
def test_real_cifar10_archive():
    data = load_dataset("cifar10", SHARED_DATA)
    assert data.classes == CIFAR10_CLASSES
    assert data.train_x.shape == (50000, 3, 32, 32) and data.test_x.shape == (10000, 3, 32, 32)
    assert torch.equal(torch.bincount(data.train_y), torch.full((10,), 5000))
    assert torch.equal(torch.bincount(data.test_y), torch.full((10,), 1000))
    # Published CIFAR-10 channel means, within the JPEG re-encoding's error.
    torch.testing.assert_close(data.mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.01, rtol=0)
