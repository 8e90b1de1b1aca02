"""uniform: plain SGD on b examples drawn uniformly without replacement (the baseline)."""

from dataclasses import dataclass

from isample.methods.base import MOMENTUM_RULE, SCORE_RULE, Selection, SelectionMethod, check_options, moving_average
from isample.sampling import variance_reduction
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult


@dataclass(frozen=True)
class UniformOptions:
    score: str = "gnorm"  # score behind the tracked tau (uniform never uses it to choose)
    tau_momentum: float = 0.9

    def __post_init__(self):
        check_options(self, {"score": SCORE_RULE, "tau_momentum": MOMENTUM_RULE})


class Uniform(SelectionMethod):
    """Draws b examples uniformly; still tracks tau from the training forward's scores, for the records."""

    name = "uniform"
    record_tag = "un"
    Options = UniformOptions
    params_keys = ("sampler.score", "sampler.tau_momentum")

    @classmethod
    def options_from_params(cls, params: dict) -> UniformOptions:
        sampler = params["sampler"]
        return UniformOptions(score=sampler["score"], tau_momentum=sampler["tau_momentum"])

    def select(self) -> Selection:
        examples = self.context.examples
        with self.context.timer.phase("draw_batch"):
            indices = examples.draw_uniform(self.context.batch_size)
            x, y = examples.gather(indices)
        return Selection(indices, None, x, y)

    def observe(self, selection: Selection, result: StepResult) -> None:
        with self.context.timer.phase("scoring"):
            tau_step = variance_reduction(SCORE_FUNCTIONS[self.options.score](result.logits, selection.targets))
        with self.context.timer.phase("threshold_update"):
            tau_step = self.context.group.mean([tau_step])[0]  # over all ranks' batches
            self.tau = moving_average(self.tau, tau_step, self.options.tau_momentum)
