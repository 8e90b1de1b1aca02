"""uniform: plain SGD on random-reshuffling epochs, b examples at a time (the baseline people train with);
or, as a diagnostic (`with_replacement`), b drawn from all N with replacement."""

import math

import torch

from isample.methods.base import Selection, SelectionMethod, moving_average
from isample.methods.catalog import UniformOptions
from isample.names import UNIFORM
from isample.sampling import variance_reduction
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult


class Uniform(SelectionMethod):
    """Trains the next b examples of the random-reshuffling stream (a fresh permutation per pass); still
    tracks tau from the training forward's scores, for the records (what importance sampling would
    have seen)."""

    name = UNIFORM
    Options = UniformOptions

    def __init__(self, context, options: UniformOptions | None = None):
        super().__init__(context, options)
        self.tau: float | None = None  # the first batch's tau starts the average (one from 0 would lag)

    def select(self) -> Selection:
        examples, b = self.context.examples, self.context.batch_size
        with self.context.timer.phase("draw_batch"):
            if self.options.with_replacement:
                indices = torch.randint(len(examples), (b,), generator=self.context.generator)
            else:
                indices = examples.take(b)
            x, y = examples.gather(indices)
        return Selection(indices, None, x, y)

    def observe(self, selection: Selection, result: StepResult) -> None:
        with self.context.timer.phase("scoring"):
            tau_step = variance_reduction(SCORE_FUNCTIONS[self.options.score](result.logits, selection.targets))
        with self.context.timer.phase("threshold_update"):
            tau_step = self.context.group.mean([tau_step])[0]  # over all ranks' batches
            self.tau = moving_average(self.tau, tau_step, self.options.tau_momentum)

    def metrics(self) -> dict[str, float]:
        return {"tau": math.nan if self.tau is None else self.tau}

    def state_dict(self) -> dict:
        return {"tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        self.tau = state["tau"]
