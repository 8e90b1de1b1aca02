"""The names every layer shares, written once. Plain Python (no torch): the report and the
params.yaml checks read them without loading a model."""

# The two methods the notebook compares (every method's name: `isample.methods.catalog.CATALOG`).
IMPORTANCE = "upper_bound"
UNIFORM = "uniform"

# The per-example scores (`isample.scores.SCORE_FUNCTIONS`) and how a scoring forward sees BatchNorm.
SCORES = ("gnorm", "loss")
SCORE_MODES = ("eval", "batch")
# Where upper_bound's tau comes from: the training forward (the 2018 code) or a scoring-mode sample.
TAU_SOURCES = ("training", "scoring")
# How upper_bound draws b of its presample of B: b distinct examples with inclusion probabilities in
# proportion to the scores (Horvitz-Thompson weights), or the 2018 code's b independent draws.
DRAWS = ("without_replacement", "with_replacement")

# The notebook's breakdown of one iteration, in order: each a `time_<phase>` column of the records.
PHASES = (
    "decision",  # importance-sample or not: tau against tau_th
    "data_loading",  # waiting for examples from disk (DataLoader workers); 0 for data held in memory
    "draw_presample",  # uniform draw of B examples (indexing, transfer, augmentation)
    "presample_forward",  # forward of B without gradients, chunk by chunk
    "scoring",  # per-example gradient-norm bound (or loss) from the logits
    "draw_batch",  # importance weights and the draw of b (or the uniform draw of b)
    "train_forward",  # forward of the b trained examples with gradients
    "backward",
    "optimizer_step",
    "threshold_update",  # tau, a and tau_th
)
MODEL_PHASES = ("presample_forward", "train_forward", "backward", "optimizer_step")
TRAIN_STEP_PHASES = ("train_forward", "backward", "optimizer_step")
