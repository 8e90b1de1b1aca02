"""The strict base every section of params.yaml is checked by, and the sections whose rules stay within
themselves: data, model, timing, compare, irreducible and report. Apart from `isample.experiment.config`
(the whole file: `Params`, the rules across sections, one line per problem) and from
`isample.experiment.train_config` (the train section: budgets, clock, prices, processes), so that a key
added to one of these sections touches this module alone.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from isample.experiment.data import DATASETS, IMAGEFOLDER
from isample.experiment.models import NORMS, check_model_name, check_norm
from isample.methods.catalog import CATALOG
from isample.names import IMPORTANCE, UNIFORM

ALWAYS_RUN = (IMPORTANCE, UNIFORM)  # the notebook's two runs, train_is and train_uniform


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataConfig(Section):
    name: Literal[(*DATASETS, IMAGEFOLDER)]  # type: ignore[valid-type]
    root: str
    download: bool
    path: str  # imagefolder: a tree train/<class>/*, test/<class>/*, or a .tar(.gz) archive of one
    image_size: int = Field(ge=0)  # imagefolder: the side images are resized and cropped to (0: as stored)
    workers: int = Field(ge=0)  # imagefolder: DataLoader worker processes reading the images
    train_subset: int = Field(ge=0)
    test_subset: int = Field(ge=0)
    train_eval_subset: int = Field(ge=0)  # training examples evaluated after every epoch, 0 = all
    augment: bool

    @model_validator(mode="after")
    def _a_folder_for_imagefolder(self):
        if self.name == IMAGEFOLDER and not self.path:
            raise ValueError(
                "data.name = 'imagefolder' needs data.path: a folder train/<class>/*, test/<class>/* "
                "or an archive of one"
            )
        return self


class ModelConfig(Section):
    name: str  # a CIFAR ResNet or Wide ResNet of isample.experiment.models, or torchvision:<name>
    norm: Literal[NORMS]  # type: ignore[valid-type]  # the normalisation of this project's own models

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return check_model_name(value)

    @model_validator(mode="after")
    def _norm_fits(self):
        check_norm(self.name, self.norm)
        return self


class TimingConfig(Section):
    presamples: list[float] = Field(min_length=1)
    warmup: int = Field(ge=0)
    iterations: int = Field(ge=2)
    forward_chunks: list[int]

    @field_validator("presamples", mode="before")
    @classmethod
    def _ratios(cls, value):
        if not isinstance(value, list) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in value):
            raise ValueError("must be a list of presample ratios")
        if any(p < 1 for p in value):
            raise ValueError("every presample ratio must be >= 1")
        return [float(p) for p in value]


class CompareConfig(Section):
    methods: list[str]  # selection methods run beside upper_bound (train_is) and uniform (train_uniform)
    forced_is: bool  # train_is also trains IS forced on at every iteration, beside the rule's run

    @field_validator("methods")
    @classmethod
    def _known_peers(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in CATALOG:
                raise ValueError(f"unknown selection method {name!r}; known: {', '.join(CATALOG)}")
            if name in ALWAYS_RUN:
                raise ValueError(f"{name!r} always runs (its own stage): list only the other methods")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a method")
        return value


class IrreducibleConfig(Section):
    """The irreducible-loss (IL) models of rho_loss (stage tables@rho_loss): two, each trained on one
    class-stratified half of the training set and scoring the other half (the authors' twin variant)."""

    model: str  # as model.name; the authors' default is ResNet-18 (a small CNN also works, they note)
    epochs: int = Field(ge=1)  # epochs over its half; the epoch of lowest loss on the other half is kept
    lr: float = Field(gt=0)  # AdamW, constant (the authors': 1e-3)
    weight_decay: float = Field(ge=0)  # AdamW's (the authors' leave torch's default, 0.01)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return check_model_name(value)


class ReportConfig(Section):
    lang: Literal["en", "zh"]
