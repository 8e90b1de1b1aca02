"""An ImageFolder data set read from disk while training (`data.name: imagefolder`): any image size,
any number of images, decoded by DataLoader workers as iterations ask for them.

`prepare_image_folder` indexes a tree `train/<class>/*`, `test/<class>/*` (or an archive of one,
unpacked once under data/prepared/) and checks it before any training: every image used is opened
and verified (PIL's check of its structure, not a full decode), classes must match between the
splits, and a bad file is one line naming it. Training then reads `ImageFiles`: decode (PIL), resize
of the shorter side and centre crop to `image_size` (torchvision transforms v2), as uint8; the
random crop, flip and normalisation run on the batch, as for CIFAR in memory.
"""

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from isample.experiment.data import ARCHIVE_SUFFIXES, IMAGE_SUFFIXES, SPLITS, DataError, stratified_subset

STATISTICS_SAMPLE = 1000  # training images the per-channel mean and std are measured on


class ImageFiles(Dataset):
    """(uint8 3 x S x S image, label) per file; S = image_size, or the file's own size when 0."""

    def __init__(self, root: str | os.PathLike, files: list[str], labels: torch.Tensor, image_size: int):
        from torchvision.transforms import v2

        self.root, self.files, self.labels, self.image_size = Path(root), files, labels, image_size
        steps = [v2.ToImage()]
        if image_size:
            steps += [v2.Resize(image_size), v2.CenterCrop(image_size)]
        self.transform = v2.Compose(steps)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.root / self.files[index]
        try:
            with Image.open(path) as image:
                pixels = self.transform(image.convert("RGB"))
        except Exception as error:  # PIL raises many kinds for a damaged file
            raise DataError(f"cannot read image {path}: {error}") from None
        return pixels.as_subclass(torch.Tensor), int(self.labels[index])


@dataclass
class StreamedData:
    """The index of an ImageFolder data set: files (relative to `root`) and labels of both splits."""

    root: str
    train_files: list[str]
    train_y: torch.Tensor
    test_files: list[str]
    test_y: torch.Tensor
    classes: list[str]
    image_size: int  # the side every image is resized and cropped to
    source: str = ""
    mean: torch.Tensor = field(default=None)  # per-channel, on the 0-1 scale, of a sample of training images
    std: torch.Tensor = field(default=None)
    content_hash: str = ""
    curve_test: torch.Tensor = field(default=None)  # test indices evaluated after every epoch

    def __post_init__(self):
        if self.curve_test is None:
            self.curve_test = torch.arange(len(self.test_files))
        if self.mean is None or self.std is None:
            self.mean, self.std = channel_statistics(self.train_dataset())
        if not self.content_hash:
            digest = hashlib.sha256(repr((self.image_size, self.classes)).encode())
            for files, labels in ((self.train_files, self.train_y), (self.test_files, self.test_y)):
                for name, label in zip(files, labels.tolist()):
                    digest.update(f"{name}\0{label}\0{(Path(self.root) / name).stat().st_size}\n".encode())
            digest.update(self.curve_test.numpy().tobytes())
            self.content_hash = digest.hexdigest()

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def train_size(self) -> int:
        return len(self.train_files)

    @property
    def test_size(self) -> int:
        return len(self.test_files)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_dataset()[0][0].shape)

    def train_dataset(self) -> ImageFiles:
        return ImageFiles(self.root, self.train_files, self.train_y, self.image_size)

    def test_dataset(self) -> ImageFiles:
        return ImageFiles(self.root, self.test_files, self.test_y, self.image_size)


def channel_statistics(dataset: ImageFiles) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (0-1 scale) over up to STATISTICS_SAMPLE images spread over the set."""
    step = max(1, len(dataset) // STATISTICS_SAMPLE)
    pixels = torch.cat([dataset[i][0].float().div_(255).reshape(3, -1) for i in range(0, len(dataset), step)], 1)
    return pixels.mean(1), pixels.std(1)


def _unpacked(path: Path, folder: Path) -> Path:
    """The archive at `path` unpacked into `folder` (once: kept while the archive is unchanged)."""
    stamp = folder / ".unpacked-from"
    mark = f"{path.resolve()} {path.stat().st_size} {path.stat().st_mtime_ns}"
    if not (stamp.is_file() and stamp.read_text() == mark):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            with tarfile.open(path, "r:*") as archive:
                archive.extractall(folder, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"data.path {path} is damaged or not a tar archive: {error}") from None
        stamp.write_text(mark)
    return folder


def _tree_root(path: Path) -> Path:
    """The folder holding train/ and test/: `path` itself or one folder inside it."""
    for candidate in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        if all((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DataError(f"data.path {path} has no train/<class>/ and test/<class>/ folders")


def _split_files(root: Path, split: str) -> dict[str, list[str]]:
    """Each class folder of a split and its image files (relative to root), sorted."""
    classes = sorted(p for p in (root / split).iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root / split} has no class folders")
    files = {}
    for folder in classes:
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
        if not images:
            raise DataError(f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
        files[folder.name] = [str(p.relative_to(root)) for p in images]
    return files


def _check_images(root: Path, files: list[str], image_size: int) -> None:
    """Every file opens as an image; without a resize, all share one size (so that they batch)."""
    first_size = None
    for name in files:
        try:
            with Image.open(root / name) as image:
                size = image.size
                image.verify()
        except Exception as error:
            raise DataError(f"cannot read image {root / name}: {error}") from None
        if not image_size:
            first_size = first_size or (size, name)
            if size != first_size[0]:
                raise DataError(
                    f"images differ in size ({first_size[1]}: {first_size[0][0]}x{first_size[0][1]}, {name}: "
                    f"{size[0]}x{size[1]}): set data.image_size to resize them to one"
                )


def prepare_image_folder(
    path: str | os.PathLike, image_size: int, train_subset: int, test_subset: int, unpack_to: str | os.PathLike
) -> StreamedData:
    """Index and check the ImageFolder data set at `path` (a tree, or an archive unpacked to `unpack_to`)."""
    path = Path(path)
    if not str(path) or not path.exists():
        raise DataError(f"data.path {str(path)!r} does not exist: give an ImageFolder tree or archive")
    folder = _unpacked(path, Path(unpack_to)) if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES) else path
    if not folder.is_dir():
        raise DataError(f"data.path {path} is neither a folder nor a .tar/.tar.gz archive")
    root = _tree_root(folder)
    train, test = _split_files(root, "train"), _split_files(root, "test")
    if set(train) != set(test):
        raise DataError(
            f"{root}: train and test classes differ (only in train: {sorted(set(train) - set(test))[:5]}, "
            f"only in test: {sorted(set(test) - set(train))[:5]})"
        )
    classes = sorted(train)
    splits = []
    for files in (train, test):
        names = [name for label in classes for name in files[label]]
        labels = torch.tensor([i for i, label in enumerate(classes) for _ in files[label]], dtype=torch.int64)
        splits.append((names, labels))
    (train_files, train_y), (test_files, test_y) = splits
    kept = stratified_subset(train_y, train_subset).tolist()
    train_files, train_y = [train_files[i] for i in kept], train_y[kept]
    _check_images(root, train_files + test_files, image_size)
    return StreamedData(
        str(root),
        train_files,
        train_y,
        test_files,
        test_y,
        classes,
        image_size,
        source=str(path),
        curve_test=stratified_subset(test_y, test_subset),
    )
