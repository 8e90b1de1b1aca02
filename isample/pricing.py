"""The work an iteration does, and a priced clock's price for it (Kaddour et al. 2023's "reference system
time"): deterministic seconds, the same on any machine, so that an equal priced budget gives every run
the same iterations wherever it runs.

Work is counted where it is done: the training step counts its b examples through a forward and a
backward and its iteration; a method's own forwards without gradients (IS's presample, Selective-
Backprop's and RHO-LOSS's candidates, IS's probes) count each example scored. Plain Python numbers,
so counting costs a few additions per iteration.
"""

from dataclasses import dataclass, fields

WORK = ("forward", "backward", "iterations", "scored")  # what `Work` counts, in order


@dataclass
class Work:
    """Examples through a training forward, through a backward, training iterations (an optimizer step
    each), and examples through a forward without gradients (scored to choose)."""

    forward: int = 0
    backward: int = 0
    iterations: int = 0
    scored: int = 0

    def train_step(self, examples: int) -> None:
        self.forward += examples
        self.backward += examples
        self.iterations += 1

    def score(self, examples: int) -> None:
        self.scored += examples

    def add(self, other: "Work") -> None:
        for name in WORK:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def copy(self) -> "Work":
        return Work(self.forward, self.backward, self.iterations, self.scored)

    def reset(self) -> None:
        self.forward = self.backward = self.iterations = self.scored = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in WORK}


@dataclass(frozen=True)
class Prices:
    """Seconds per unit of work: per example through a training forward (`forward`) and a backward
    (`backward`), per iteration (`iteration`: the optimizer step and the loop around it), per example
    scored without gradients (`score`: its loading, forward and score). Every price must be > 0, but
    `score` may be 0: a free presample (the positive control of importance sampling)."""

    forward: float
    backward: float
    iteration: float
    score: float

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            free = field.name == "score"  # the only price that may be 0
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (value >= 0 if free else value > 0)
            ):
                raise ValueError(f"{field.name} = {value!r}: must be a number of seconds {'>= 0' if free else '> 0'}")

    def seconds(self, work: Work) -> float:
        """What `work` costs."""
        return (
            work.forward * self.forward
            + work.backward * self.backward
            + work.iterations * self.iteration
            + work.scored * self.score
        )

    def train_step(self, batch_size: int) -> float:
        """A training iteration of `batch_size` examples."""
        return batch_size * (self.forward + self.backward) + self.iteration

    def presample_share(self, presample_size: int, batch_size: int) -> float:
        """a: scoring `presample_size` examples over a training step of `batch_size` (the rule's 1 + a)."""
        return presample_size * self.score / self.train_step(batch_size)

    def with_presample_share(self, a: float, presample_size: int, batch_size: int) -> "Prices":
        """These prices with `score` set so that a presample of `presample_size` costs `a` training steps
        of `batch_size` (a stated a: "what if my presample cost a = 0.1 of a step")."""
        if not a >= 0:
            raise ValueError(f"a = {a!r}: must be >= 0")
        return Prices(self.forward, self.backward, self.iteration, a * self.train_step(batch_size) / presample_size)
