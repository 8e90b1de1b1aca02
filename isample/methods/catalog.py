"""What the family holds, without importing any method: each method's Options (its rules and its
defaults, the one place for both), where params.yaml keeps each option, its record tag and the
module that implements it. Plain Python (no torch), so checking params.yaml loads no method, and
an edit to one method's module changes nothing that another method's runs depend on.

Options are frozen dataclasses whose __post_init__ rejects a bad value with ValueError naming the
field. The pipeline validates params.yaml sections through them (pydantic's TypeAdapter adds the
types, unknown keys and missing keys); a library user gets the same rules by constructing them.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from isample.names import DRAWS, IMPORTANCE, SCORE_MODES, SCORES, TAU_SOURCES, UNIFORM

UNSEEN_RULES = ("max", "mean")
Score = Literal[SCORES]
ScoreMode = Literal[SCORE_MODES]
TauSource = Literal[TAU_SOURCES]
Draw = Literal[DRAWS]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rule_problems(values: dict[str, Any], rules: dict[str, tuple[Any, str]]) -> list[str]:
    """ "field = value: what is allowed" for every value that breaks its field's rule."""
    return [
        f"{name} = {values[name]!r}: {allowed}"
        for name, (test, allowed) in rules.items()
        if name in values and not test(values[name])
    ]


def check_options(options: Any, rules: dict[str, tuple[Any, str]]) -> None:
    """ValueError naming the first field whose value breaks its rule (called from __post_init__)."""
    problems = rule_problems({field.name: getattr(options, field.name) for field in dataclasses.fields(options)}, rules)
    if problems:
        raise ValueError(problems[0])


SCORE_RULE = (lambda s: s in SCORES, f"must be one of {', '.join(SCORES)} (unknown score)")
SCORE_MODE_RULE = (lambda m: m in SCORE_MODES, f"must be one of {', '.join(SCORE_MODES)}")
MOMENTUM_RULE = (lambda m: is_number(m) and 0 <= m < 1, "must be in [0, 1)")


def share_rule(low_open: bool, high_open: bool) -> tuple[Any, str]:
    """A number in an interval of [0, 1], open or closed at each end."""

    def test(value: Any) -> bool:
        if not is_number(value):
            return False
        above = value > 0 if low_open else value >= 0
        below = value < 1 if high_open else value <= 1
        return above and below

    return test, f"must be in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"


@dataclass(frozen=True)
class NoOptions:
    """A method without parameters of its own."""


@dataclass(frozen=True)
class UniformOptions:
    score: Score = "gnorm"  # score behind the tracked tau (uniform never uses it to choose)
    tau_momentum: float = 0.9
    # Draw each batch's b examples from all N with replacement instead of the reshuffled stream (the draw
    # tau's variance reduction is stated against; a diagnostic, not in params.yaml)
    with_replacement: bool = False

    RULES: ClassVar[dict] = {
        "score": SCORE_RULE,
        "tau_momentum": MOMENTUM_RULE,
        "with_replacement": (lambda v: isinstance(v, bool), "must be true or false"),
    }

    def __post_init__(self):
        check_options(self, self.RULES)


@dataclass(frozen=True)
class UpperBoundOptions:
    presample: float | Literal["auto"] = 2.0  # p = B / b; "auto": chosen while training, up to presample_max
    presample_max: float = 8.0  # the largest ratio `auto` tries (isample.methods.presample_ratio)
    tau_threshold: float | Literal["auto"] = "auto"  # "auto": 1 + a from measured times; or a fixed number
    score: Score = "gnorm"
    score_mode: ScoreMode = "eval"  # eval: BatchNorm with running statistics | batch: batch statistics
    smoothing: float = 0.1  # eps: mix the score distribution with the uniform one; weights stay <= 1 / eps
    forward_chunk: int = 64  # examples per presample forward in eval mode (0 = all B); batch mode uses b
    tau_momentum: float = 0.9
    presample_bf16: bool = False  # bf16 autocast in the presample forward only (scores still in fp32)
    always_importance: bool = False  # skip the decision: IS forced on (timing's IS rows, compare.forced_is)
    # No IS before this share of the training budget (the authors' documentation: from the first lr drop)
    importance_from: float = 0.0
    # tau while IS is off: "training", of the training forward's scores (the 2018 code's, free);
    # "scoring", of one chunk of the trained examples scored as a presample is, every 16 iterations
    tau_source: TauSource = "training"
    # b of the presample's B: "without_replacement", b distinct ones with Horvitz-Thompson weights
    # (isample.sampling.importance_draw_without_replacement; the default since docs/break-even.md's
    # measurement: never worse than the 2018 draw beyond the resolution, better in the default regime);
    # "with_replacement", the 2018 code's b independent draws (some repeat)
    draw: Draw = "without_replacement"

    RULES: ClassVar[dict] = {
        "presample": (
            lambda p: p == "auto" or (is_number(p) and p >= 1),
            "must be 'auto' or >= 1 (B = presample * batch_size)",
        ),
        "presample_max": (lambda p: is_number(p) and p >= 2, "must be >= 2 (the largest ratio presample: auto tries)"),
        "tau_threshold": (lambda t: t == "auto" or (is_number(t) and t >= 0), "must be 'auto' or >= 0"),
        "score": SCORE_RULE,
        "score_mode": SCORE_MODE_RULE,
        "smoothing": share_rule(low_open=False, high_open=True),
        "forward_chunk": (
            lambda c: isinstance(c, int) and not isinstance(c, bool) and c >= 0,
            "must be >= 0 (0 = all B at once)",
        ),
        "tau_momentum": MOMENTUM_RULE,
        "presample_bf16": (lambda v: isinstance(v, bool), "must be true or false"),
        "always_importance": (lambda v: isinstance(v, bool), "must be true or false"),
        "importance_from": (share_rule(low_open=False, high_open=True)[0], "must be in [0, 1) (a share of the budget)"),
        "tau_source": (lambda v: v in TAU_SOURCES, f"must be one of {', '.join(TAU_SOURCES)}"),
        "draw": (lambda v: v in DRAWS, f"must be one of {', '.join(DRAWS)}"),
    }

    def __post_init__(self):
        check_options(self, self.RULES)
        if self.presample == "auto" and self.tau_threshold != "auto":
            raise ValueError(
                f"tau_threshold = {self.tau_threshold!r}: must be 'auto' with presample: auto "
                "(each ratio is priced by its own a)"
            )

    @property
    def largest_presample(self) -> float:
        """The largest ratio a presample is taken at: the fixed one, or auto's bound."""
        return self.presample_max if self.presample == "auto" else self.presample


@dataclass(frozen=True)
class ReuseOptions:
    smoothing: float = 0.2  # eps: the uniform share of q; every weight <= 1 / eps
    unseen: Literal["max", "mean"] = "max"  # the score of an example without a usable one
    max_age: float = 0.0  # epochs after which a score is unusable (0: scores never expire)
    score: Score = "gnorm"

    RULES: ClassVar[dict] = {
        "smoothing": (
            share_rule(low_open=True, high_open=False)[0],
            "must be in (0, 1]: eps > 0 keeps every example drawable",
        ),
        "unseen": (lambda u: u in UNSEEN_RULES, f"must be one of {', '.join(UNSEEN_RULES)}"),
        "max_age": (lambda a: is_number(a) and a >= 0, "must be >= 0 epochs (0: never expire)"),
        "score": SCORE_RULE,
    }

    def __post_init__(self):
        check_options(self, self.RULES)


@dataclass(frozen=True)
class SelectiveBackpropOptions:
    beta: float = 3.0  # selectivity: the larger, the more only the biggest losers are kept (authors: 3)
    sampling_min: float = 0.0  # floor of the selection probability (authors: 0)
    history: int = 1024  # recent losses the percentile is taken among
    score_mode: ScoreMode = "eval"  # BatchNorm in the candidate forward: running (eval) or batch statistics
    prime_passes: int = 1  # passes over the data that train every example before selecting (authors: 1)

    RULES: ClassVar[dict] = {
        "beta": (lambda v: is_number(v) and v >= 0, "must be >= 0 (0 selects every candidate)"),
        "sampling_min": share_rule(low_open=False, high_open=False),
        "history": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "must be >= 1"),
        "score_mode": SCORE_MODE_RULE,
        "prime_passes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "must be >= 0"),
    }

    def __post_init__(self):
        check_options(self, self.RULES)


@dataclass(frozen=True)
class InfoBatchOptions:
    prune_ratio: float = 0.5  # r: share of the well-learned examples pruned each epoch
    delta: float = 0.875  # share of the budget with pruning; the rest anneals to full data

    RULES: ClassVar[dict] = {
        "prune_ratio": (
            lambda r: is_number(r) and 0 <= r <= 0.9,
            "must be in [0, 0.9] (the authors' package keeps at least 10% of the well-learned examples)",
        ),
        "delta": (share_rule(low_open=False, high_open=False)[0], "must be in [0, 1] (a share of the budget)"),
    }

    def __post_init__(self):
        check_options(self, self.RULES)


@dataclass(frozen=True)
class RhoLossOptions:
    selection: float = 0.1  # share of the candidates trained: b of ceil(b / selection) (authors: percent_train 0.1)
    # BatchNorm in the candidate forward: the candidates' own statistics, as the authors' train-mode forward
    # (selection_train_mode), without changing the running ones | eval: the running statistics
    score_mode: ScoreMode = "batch"

    RULES: ClassVar[dict] = {
        "selection": share_rule(low_open=True, high_open=False),
        "score_mode": SCORE_MODE_RULE,
    }

    def __post_init__(self):
        check_options(self, self.RULES)


@dataclass(frozen=True)
class Entry:
    """One method of the family as the pipeline sees it before loading it.

    keys: option field -> its params.yaml key; a method with an empty mapping keeps every option in
    its own section `methods.<name>` (the usual case). implementation: "module:Class", or the class.
    """

    name: str
    options: type
    implementation: Any
    tag: str = ""
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    # Per-example tables the method reads by data-set index (Context.tables), which the pipeline's
    # tables@<name> stage makes before it trains.
    tables: tuple[str, ...] = ()

    @property
    def record_tag(self) -> str:
        return self.tag or self.name

    @property
    def section(self) -> str | None:
        """params.yaml's section of its own (`methods.<name>`), None for the two notebook methods."""
        return None if self.keys else f"methods.{self.name}"

    def option_keys(self) -> dict[str, str]:
        """Every option field it takes from params.yaml -> the key that holds it."""
        if self.keys:
            return dict(self.keys)
        return {field.name: f"methods.{self.name}.{field.name}" for field in dataclasses.fields(self.options)}


_SAMPLER = (
    "score",
    "score_mode",
    "smoothing",
    "forward_chunk",
    "tau_momentum",
    "presample_bf16",
    "tau_source",
    "draw",
)
CATALOG: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry(
            UNIFORM,
            UniformOptions,
            "isample.methods.uniform:Uniform",
            tag="un",
            keys={"score": "sampler.score", "tau_momentum": "sampler.tau_momentum"},
        ),
        Entry(
            IMPORTANCE,
            UpperBoundOptions,
            "isample.methods.upper_bound:UpperBound",
            tag="is",
            keys={
                "presample": "presample",
                "presample_max": "sampler.presample_max",
                "tau_threshold": "sampler.tau_th",
                **{field: f"sampler.{field}" for field in _SAMPLER},
            },
        ),
        Entry("reuse", ReuseOptions, "isample.methods.reuse:Reuse"),
        Entry("selective_backprop", SelectiveBackpropOptions, "isample.methods.selective_backprop:SelectiveBackprop"),
        Entry("infobatch", InfoBatchOptions, "isample.methods.infobatch:InfoBatch"),
        Entry("rho_loss", RhoLossOptions, "isample.methods.rho_loss:RhoLoss", tables=("irreducible_loss",)),
    )
}


def entry(name: str) -> Entry:
    if name not in CATALOG:
        raise ValueError(f"unknown selection method {name!r}; known: {', '.join(CATALOG)}")
    return CATALOG[name]
