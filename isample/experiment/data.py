"""CIFAR-10/100 from torchvision's official files or a local ImageFolder tree / archive, and any
ImageFolder data set (`imagefolder`) read from disk while training.

CIFAR is decoded once into compact uint8 tensors that training holds in memory and indexes by
example. An ImageFolder data set is only indexed (its files checked once): DataLoader workers decode,
resize and crop the examples each iteration asks for (`StreamedData`, `ImageFiles`). Augmentation
and normalisation run on whole batches on the model's device, the same for both.
"""

import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from isample.seeds import derive_seed

DATASETS = {
    "cifar10": {"classes": 10, "torchvision": "CIFAR10", "folder": "cifar-10-batches-py"},
    "cifar100": {"classes": 100, "torchvision": "CIFAR100", "folder": "cifar-100-python"},
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
IMAGEFOLDER = "imagefolder"  # data.name of a data set read from disk while training
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SPLITS = ("train", "test")


class DataError(Exception):
    """Missing or damaged data, with a message that says what was looked for and where."""


@dataclass
class PreparedData:
    train_x: torch.Tensor  # uint8, N x 3 x 32 x 32
    train_y: torch.Tensor  # int64, N
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: str = ""
    mean: torch.Tensor = field(default=None)  # per-channel, of the training images, on the 0-1 scale
    std: torch.Tensor = field(default=None)
    content_hash: str = ""
    # Test indices evaluated after every epoch (the curves); the final accuracy uses the whole test set.
    curve_test: torch.Tensor = field(default=None)

    def __post_init__(self):
        if self.mean is None or self.std is None:
            pixels = self.train_x.float().div_(255).transpose(0, 1).reshape(3, -1)
            self.mean, self.std = pixels.mean(1), pixels.std(1)
        if self.curve_test is None:
            self.curve_test = torch.arange(len(self.test_x))
        if not self.content_hash:
            digest = hashlib.sha256()
            for tensor in (self.train_x, self.train_y, self.test_x, self.test_y, self.curve_test):
                digest.update(tensor.contiguous().numpy().tobytes())
            self.content_hash = digest.hexdigest()

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def train_size(self) -> int:
        return len(self.train_x)

    @property
    def test_size(self) -> int:
        return len(self.test_x)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def _check_name(name: str) -> dict:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def _local_candidates(name: str, root: Path) -> list[Path]:
    """ImageFolder trees or archives under root named after the data set (cifar10 is not cifar100)."""
    pattern = re.compile(rf"^{re.escape(name)}(?![0-9])")
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if not pattern.match(path.name):
            continue
        if path.is_dir() and all((path / split).is_dir() for split in SPLITS):
            found.append(path)
        elif path.name.endswith(ARCHIVE_SUFFIXES) and path.exists():
            found.append(path)
    return found


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as error:  # PIL raises many kinds for a damaged file
        raise DataError(f"cannot decode image {where}: {error}") from error
    if array.shape != (32, 32, 3):
        raise DataError(f"image {where} is {array.shape[1]}x{array.shape[0]}, expected 32x32 RGB")
    return array


def _split_class_file(member: str) -> tuple[str, str, str] | None:
    parts = member.replace("\\", "/").split("/")
    if len(parts) < 3 or parts[-3] not in SPLITS or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    return parts[-3], parts[-2], "/".join(parts[-3:])


def _iter_images(path: Path):
    """(split, class, key, bytes) for every image of a tree or archive."""
    if path.is_dir():
        for file in sorted(path.glob("*/*/*")):
            parsed = _split_class_file(str(file.relative_to(path)))
            if parsed:
                yield (*parsed, file.read_bytes())
        return
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parsed = _split_class_file(member.name) if member.isfile() else None
                if parsed:
                    yield (*parsed, archive.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"archive {path} is damaged or not a tar archive: {error}") from error


def load_image_folder(path: Path, expected_classes: int | None = None) -> tuple:
    """Decode train/<class>/* and test/<class>/* of a tree or archive; classes sort into labels."""
    images: dict[str, list] = {split: [] for split in SPLITS}
    for split, class_name, key, data in _iter_images(Path(path)):
        images[split].append((class_name, key, _decode(data, f"{key} in {path}")))
    train_classes = sorted({c for c, _, _ in images["train"]})
    for split in SPLITS:
        if not images[split]:
            raise DataError(f"{path} has no {split}/<class>/<image> files")
    if expected_classes is not None and len(train_classes) != expected_classes:
        raise DataError(f"{path} has {len(train_classes)} training classes, expected {expected_classes}")
    unknown = {c for c, _, _ in images["test"]} - set(train_classes)
    if unknown:
        raise DataError(f"{path} has test classes missing from train: {sorted(unknown)[:5]}")
    label = {name: i for i, name in enumerate(train_classes)}
    tensors = []
    for split in SPLITS:
        # Keyed by full path: some CIFAR-100 file names occur in two class folders.
        rows = sorted(images[split], key=lambda row: (label[row[0]], row[1]))
        x = torch.from_numpy(np.stack([row[2] for row in rows])).permute(0, 3, 1, 2).contiguous()
        y = torch.tensor([label[row[0]] for row in rows], dtype=torch.int64)
        tensors += [x, y]
    return (*tensors, train_classes)


def _load_torchvision(name: str, root: Path, download: bool) -> tuple:
    import torchvision

    dataset_class = getattr(torchvision.datasets, DATASETS[name]["torchvision"])
    try:
        splits = [dataset_class(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as error:
        raise DataError(f"torchvision's {name} files under {root} are missing or damaged: {error}") from error
    tensors = []
    for split in splits:
        tensors.append(torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous())
        tensors.append(torch.tensor(split.targets, dtype=torch.int64))
    return (*tensors, list(splits[0].classes))


def load_dataset(name: str, root: str | os.PathLike, download: bool = False) -> PreparedData:
    """Load from torchvision's files under root (downloading them if asked), else a local tree/archive."""
    spec = _check_name(name)
    root = Path(root)
    official = root / spec["folder"]
    if official.is_dir() or download:
        *tensors, classes = _load_torchvision(name, root, download)
        return PreparedData(*tensors, classes, source=f"torchvision:{official}")
    candidates = _local_candidates(name, root)
    if not candidates:
        raise DataError(
            f"no {name} data under {root}/: looked for torchvision's {spec['folder']}/ and for an ImageFolder "
            f"tree or .tar/.tar.gz archive named {name}* (train/<class>/*, test/<class>/*); put one there, "
            f"or set data.download: true on a machine that is online"
        )
    *tensors, classes = load_image_folder(candidates[0], spec["classes"])
    return PreparedData(*tensors, classes, source=str(candidates[0]))


def stratified_subset(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of `size` examples with the classes as balanced as the counts allow."""
    if size <= 0 or size >= len(labels):
        return torch.arange(len(labels))
    generator = torch.Generator().manual_seed(derive_seed(seed, "subset"))
    classes = torch.unique(labels)
    per_class = [size // len(classes) + (i < size % len(classes)) for i in range(len(classes))]
    chosen = []
    for count, label in zip(per_class, classes):
        members = torch.nonzero(labels == label).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
    return torch.cat(chosen).sort().values


def subset(data: PreparedData, train_size: int = 0, test_size: int = 0, seed: int = 0) -> PreparedData:
    """A class-stratified training subset for quick runs (0 = keep all; mean and std are recomputed), and
    the class-stratified test subset evaluated after every epoch; the whole test set is kept, for the
    final accuracy."""
    train = stratified_subset(data.train_y, train_size, seed)
    return PreparedData(
        data.train_x[train],
        data.train_y[train],
        data.test_x,
        data.test_y,
        data.classes,
        data.source,
        curve_test=stratified_subset(data.test_y, test_size, seed),
    )


class BatchTransform:
    """uint8 batch -> normalised float batch, with random crop (padding of 1/8 of the side: 4 pixels at
    32 x 32) and flip."""

    def __init__(
        self,
        mean: torch.Tensor,
        std: torch.Tensor,
        augment: bool = False,
        channels_last: bool = False,
        generator: torch.Generator | None = None,
    ):
        self.mean = mean.view(1, 3, 1, 1)
        self.std = std.view(1, 3, 1, 1)
        self.augment = augment
        self.channels_last = channels_last
        self.generator = generator

    def _random_crop_and_flip(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        pad = max(1, height // 8)  # CIFAR's 4 pixels at 32 x 32, in proportion at other sizes
        padded = F.pad(x, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=self.generator).to(x.device)
        flip = (torch.rand(n, 1, generator=self.generator) < 0.5).to(x.device)
        row_steps = torch.arange(height, device=x.device)
        col_steps = torch.arange(width, device=x.device)
        rows = (offsets[0] + row_steps).view(n, 1, height, 1)
        cols = (offsets[1] + torch.where(flip, col_steps.flip(0), col_steps)).view(n, 1, 1, width)
        batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        channel = torch.arange(3, device=x.device).view(1, 3, 1, 1)
        return padded[batch, channel, rows, cols]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment:
            x = self._random_crop_and_flip(x)
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        x = (x.float().div_(255) - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
