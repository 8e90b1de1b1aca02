"""The report's words: every rule of `isample.report.facts` in English and Chinese, one set of keys."""

from isample.report.facts import (
    LINEAR_R2, MIN_RATIOS, MIN_SEEDS, MIN_SHARE, NON_MODEL_NEGLIGIBLE, PREDICTION_TOLERANCE, PROPORTIONAL_INTERCEPT,
    SHARP_CHANGE, STRONG_CORRELATION,
)  # fmt: skip

TEXT = {
    "en": {
        "title": "# Importance sampling against uniform SGD at equal training time",
        "generated": "Written by the `report` stage from the records under `results/`; rerun `dvc repro` to refresh.",
        "parameters": "## Parameters",
        "files": "## Result files",
        "s1": "## 1. Equal training time: importance sampling against uniform (notebook experiments 1-3)",
        "s2": "## 2. Learning rate and IS activation (notebook experiments 3-5)",
        "s3": "## 3. What the sampling costs (notebook experiments 6-8)",
        "rules": "## How the conclusions are drawn",
        "key": "### Key information",
        "conclusion": "### Conclusion",
        "figures": "### Figures",
        "missing": "**Missing:** {what}. This section is incomplete until it exists (run `dvc repro`).",
        "missing_upper_bound": "no importance-sampling record in results/upper_bound/",
        "missing_uniform": "no uniform record in results/uniform/",
        "missing_paired seeds": "no seed was run both with IS and uniform",
        "missing_timing": "no timing record (results/timing.xlsx)",
        "cols_runs": ["method", "seeds", "train accuracy", "weighted train accuracy", "train loss", "unbiased train loss",
                      "test accuracy",
                      "test loss", "best test accuracy", "time to uniform's final accuracy (s)", "IS share", "epochs"],
        "method_upper_bound": "importance sampling", "method_uniform": "uniform SGD",
        "difference": "IS minus uniform, final test accuracy: {diff:+.2f} points over {n} seed(s){ci}.",
        "ci": "; 95% confidence interval [{low:+.2f}, {high:+.2f}]",
        "train_note": "Train accuracy and loss are measured on the batches actually trained (what the notebook "
                      "logged, biased towards hard examples for IS); the unbiased train loss and the weighted train "
                      "accuracy weight each example by 1 / (B q_i), undoing that bias.",
        "cols_milestones": ["seed", "lr before", "lr after", "at (s)", "IS share before", "IS share after",
                            "sharp change"],
        "first_on": "IS first switched on at: {times}; switched off again at: {off}.",
        "first_on_seed": "{time} s (seed {seed})", "never_seed": "never (seed {seed})",
        "never": "never",
        "cols_timing": ["configuration", "iteration (ms)", "presample (ms)", "train step (ms)", "a",
                        "a / p", "notebook a / p", "k = T/t", "notebook model (ms)", "error", "measured model (ms)",
                        "error ", "u", "tau_th = 1 + a", "non-model share (IQR)"],
        "fit": "Presample time = {slope:.2f} ms x p {intercept:+.2f} ms (R² = {r2:.3f}).",
        "correlation": "Correlation of presample and training-step times across the iterations of a ratio (median "
                       "over ratios): r = {corr:.2f}.",
        "model_note": "t and T are the training step's forward and backward time per example, k = T / t; a is the "
                      "measured presample time over the training-step time. Notebook model: (p + 1 + k) b t. Measured "
                      "model: p b (t_p + t_s) + b (t + T) + optimizer step + non-model time, with t_p and t_s the "
                      "presample forward's and the bound's own time per example (medians over the ratios) and the "
                      "rest from the uniform iteration. u = (p + k + 1) / (p (1 + k)) is the speed-up against "
                      "full-batch GD.",
        "one_seed": "One seed: no direction is drawn from test accuracy, time to accuracy or train metrics, since "
                    "the difference between two seeds of the same method can be as large (the figures show this one "
                    "seed). For a finding, run several seeds: `dvc exp run -S 'train.seeds=[0,1,2]'`.",
        "accuracy_is_better": "Importance sampling ends with higher test accuracy than uniform, by {diff:+.2f} "
                              "points; the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference "
                              "is larger than the seed noise.",
        "accuracy_is_worse": "Importance sampling ends with lower test accuracy than uniform, by {diff:+.2f} points; "
                             "the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference is larger "
                             "than the seed noise.",
        "accuracy_within_noise": "The final test accuracies differ by {diff:+.2f} points, but the 95% interval "
                                 "[{low:+.2f}, {high:+.2f}] includes zero: importance sampling and uniform cannot be "
                                 "told apart at this number of seeds.",
        "higher_upper_bound": "importance sampling", "higher_uniform": "uniform",
        "regime_off": "IS never switched on (tau stayed below tau_th): both runs were uniform SGD, so no claim "
                      "about importance sampling against uniform is drawn. Uniform runs of different seeds ended "
                      "{spread:.2f} points of test accuracy apart (standard deviation): that is the noise level of "
                      "this setting. IS switches on once the training set is well fitted: give it a longer "
                      "`train.budget` or earlier `train.lr_milestones`.",
        "regime_off_one_seed": "IS never switched on (tau stayed below tau_th): both runs were uniform SGD, so no "
                               "claim about importance sampling against uniform is drawn. They share their seed, "
                               "so their gap ({gap:.2f} points) only shows how many iterations each fitted in the "
                               "budget; the noise level needs several seeds: `dvc exp run -S "
                               "'train.seeds=[0,1,2]'`. IS switches on once the training set is well fitted: give "
                               "it a longer `train.budget` or earlier `train.lr_milestones`.",
        "regime_partial": "IS was on in {share:.1%} of the iterations: the run compares partly importance-sampled "
                          "training with uniform.",
        "regime_on": "IS was on in {share:.1%} of the iterations.",
        "train_accuracy_misleading": "IS train accuracy on the sampled examples is lower than uniform's, but with "
                                     "the sampling bias undone (weighted accuracy and unbiased loss) IS fitted the "
                                     "training set no worse: the plain train accuracy is not a meaningful metric "
                                     "for IS (notebook, experiment 2).",
        "train_fit_worse": "IS weighted train accuracy is lower and its unbiased train loss is higher than uniform's: "
                           "IS fitted the training set less well within the budget.",
        "train_fit_not_worse": "With the sampling bias undone, IS fitted the training set no worse than uniform.",
        "runs_diverged": "Diverged (loss or scores became NaN or infinite): {diverged_text}. No accuracy conclusion "
                         "is drawn from a diverged run; that it diverged is the result.",
        "tta_never": "IS did not reach the uniform run's final test accuracy within its budget on {never} seed(s).",
        "tta_same": "IS and uniform reached the uniform run's final test accuracy within one epoch's training time "
                    "of each other ({tta_is:.0f} s and {tta_uniform:.0f} s; an epoch takes {epoch:.0f} s): the same.",
        "tta_faster": "IS reached the uniform run's final test accuracy after {tta_is:.0f} s, uniform after "
                      "{tta_uniform:.0f} s: IS got there sooner.",
        "tta_slower": "IS reached the uniform run's final test accuracy after {tta_is:.0f} s, uniform after "
                      "{tta_uniform:.0f} s: IS got there later.",
        "lr_affects_is": "The IS share changed by more than half at an lr change: the learning rate affects "
                         "importance sampling (notebook, experiments 3 and 5).",
        "lr_no_effect": "No lr change moved the IS share by more than half.",
        "lr_constant": "No lr change falls between two recorded epochs (a constant learning rate, as in notebook "
                       "experiment 4, or too few epochs): there is none to compare across.",
        "never_on": "IS never switched on in this run.",
        "switched_on": "IS switched on by itself when tau exceeded tau_th.",
        "presample_proportional": "Presample time is proportional to p (R² = {r2:.3f}, intercept {intercept:+.2f} "
                                  "ms): the notebook's experiment 8 holds; a smaller p makes IS cheaper.",
        "presample_linear_offset": "Presample time is linear in p (R² = {r2:.3f}) with a fixed cost of "
                                   "{intercept:+.2f} ms per iteration.",
        "presample_not_linear": "Presample time is not linear in p (R² = {r2:.3f}): the measurement is too noisy "
                                "or the hardware is not saturated.",
        "fit_one_ratio": "Only one presample ratio was measured (p = {p}): no line is fitted and nothing is said about "
                         "how presample time grows with p. Measure several: `dvc exp run -S "
                         "'timing.presamples=[2,3,5,7]'`.",
        "non_model_negligible": "Non-model time is at most {worst:.1%} of an IS iteration at every ratio: it can be "
                                "ignored (notebook, experiment 7).",
        "non_model_large": "Non-model time reaches {worst:.1%} of an IS iteration: it is not negligible (notebook, "
                           "experiment 6).",
        "passes_correlated": "The presample forward and training-step times move together (r = {corr:.2f}).",
        "passes_not_correlated": "The presample forward and training-step times are not strongly correlated "
                                 "(r = {corr:.2f}).",
        "passes_no_correlation": "Too few measured iterations per ratio to correlate presample and training-step "
                                 "times: raise `timing.iterations`.",
        "cost_model_accurate": "The cost model (p + 1 + k) b t predicts the iteration time within {error:.0%} at "
                               "every ratio.",
        "cost_model_off": "The cost model (p + 1 + k) b t misses the measured iteration time by up to {error:.0%} "
                          "(error column): it prices the B presample forwards at the training forward's cost t "
                          "per example, which a forward without gradients on large batches need not match.",
        "both_models_fit": "Both cost models predict the iteration time within tolerance at every ratio: the notebook's "
                           "(p + 1 + k) b t up to {error:.0%} off, the measured one up to {measured_error:.0%}.",
        "measured_model_fits": "The measured cost model fits: it predicts every ratio within {measured_error:.0%}, "
                               "while the notebook's (p + 1 + k) b t misses by up to {error:.0%}, because it prices "
                               "the presample forward (no autograd, in chunks) at the training forward's t.",
        "notebook_model_fits": "The notebook's cost model predicts every ratio within {error:.0%}; the measured one "
                               "misses by up to {measured_error:.0%}.",
        "neither_model_fits": "Neither cost model predicts every ratio within tolerance: the notebook's misses by up "
                              "to {error:.0%}, the measured one by up to {measured_error:.0%}.",
        "rule_list": [
            f"Accuracy: the mean over seeds of IS minus uniform final test accuracy; a direction needs at least "
            f"{MIN_SEEDS} paired seeds, and a Student-t 95% interval of the paired differences that excludes zero.",
            "Regime: the share of IS iterations over the whole run (0: never on, and then no IS-versus-uniform claim "
            "at all; below 50%: partly).",
            "Train metrics: compared with the sampling bias undone; IS fitted worse when its weighted train accuracy "
            "is lower and its unbiased train loss higher than uniform's.",
            "Divergence: a run whose loss or scores became NaN or infinite is shown as diverged and no accuracy "
            "conclusion is drawn from it.",
            "Time to accuracy: first epoch end at which a run reaches the uniform run's final test accuracy; mean "
            "times less than one epoch's training time apart are the same.",
            f"Learning rate: an lr change counts when the IS share moves by more than {SHARP_CHANGE:.0%} of the "
            f"larger of the shares before and after it, that larger share being at least {MIN_SHARE:.0%}.",
            f"Presample time: fitted only over at least {MIN_RATIOS} ratios; linear when R² >= {LINEAR_R2}; "
            f"proportional when also |intercept| <= {PROPORTIONAL_INTERCEPT:.0%} of the time at the largest p.",
            f"Non-model time: negligible when at most {NON_MODEL_NEGLIGIBLE:.0%} of the median IS iteration at "
            "every ratio.",
            f"Cost models: a model fits when it predicts every measured ratio within {PREDICTION_TOLERANCE:.0%}; "
            f"correlation strong at r >= {STRONG_CORRELATION}.",
        ],
    },
    "zh": {
        "title": "# 等训练时间下重要性采样与均匀 SGD 的对比",
        "generated": "由 `report` 阶段根据 `results/` 下的记录生成；运行 `dvc repro` 以更新。",
        "parameters": "## 参数",
        "files": "## 结果文件",
        "s1": "## 1. 等训练时间：重要性采样对比均匀采样（笔记实验 1-3）",
        "s2": "## 2. 学习率与重要性采样的启用（笔记实验 3-5）",
        "s3": "## 3. 采样本身的开销（笔记实验 6-8）",
        "rules": "## 结论的判定规则",
        "key": "### 关键信息",
        "conclusion": "### 结论",
        "figures": "### 图",
        "missing": "**缺少：** {what}。在它存在之前本节不完整（运行 `dvc repro`）。",
        "missing_upper_bound": "results/upper_bound/ 中没有重要性采样记录",
        "missing_uniform": "results/uniform/ 中没有均匀采样记录",
        "missing_paired seeds": "没有同时用重要性采样和均匀采样运行的种子",
        "missing_timing": "没有计时记录（results/timing.xlsx）",
        "cols_runs": ["方法", "种子数", "训练准确率", "加权训练准确率", "训练损失", "无偏训练损失", "测试准确率", "测试损失",
                      "最佳测试准确率", "达到均匀采样最终准确率的时间 (s)", "重要性采样占比", "轮数"],
        "method_upper_bound": "重要性采样", "method_uniform": "均匀 SGD",
        "difference": "最终测试准确率，重要性采样减均匀：{diff:+.2f} 个百分点，{n} 个种子{ci}。",
        "ci": "；95% 置信区间 [{low:+.2f}, {high:+.2f}]",
        "train_note": "训练准确率和损失在实际训练的批次上测得（即笔记记录的量，对重要性采样偏向难样本）；"
                      "无偏训练损失和加权训练准确率对每个样本按 1 / (B q_i) 加权，消除这一偏差。",
        "cols_milestones": ["种子", "变化前学习率", "变化后学习率", "时间 (s)", "变化前占比", "变化后占比", "剧烈变化"],
        "first_on": "重要性采样首次启用于：{times}；再次关闭于：{off}。",
        "first_on_seed": "{time} s（种子 {seed}）", "never_seed": "从未（种子 {seed}）",
        "never": "从未",
        "cols_timing": ["配置", "迭代 (ms)", "预采样 (ms)", "训练步 (ms)", "a", "a / p", "笔记 a / p", "k = T/t",
                        "笔记模型 (ms)", "误差", "实测模型 (ms)", "误差 ", "u", "tau_th = 1 + a", "非模型时间占比 (IQR)"],
        "fit": "预采样时间 = {slope:.2f} ms x p {intercept:+.2f} ms（R² = {r2:.3f}）。",
        "correlation": "同一比例各迭代中预采样与训练步时间的相关系数（各比例的中位数）：r = {corr:.2f}。",
        "model_note": "t 和 T 是训练步中每个样本的前向和反向时间，k = T / t；a 是测得的预采样时间与训练步时间之比。"
                      "笔记模型：(p + 1 + k) b t。实测模型：p b (t_p + t_s) + b (t + T) + 优化器步 + 非模型时间，其中 t_p 和 "
                      "t_s 是预采样前向和上界计算各自的每样本时间（各比例的中位数），其余取自均匀迭代。"
                      "u = (p + k + 1) / (p (1 + k)) 是相对全批量梯度下降的加速比。",
        "one_seed": "只有一个种子：不从测试准确率、达到准确率的时间或训练指标得出方向，因为同一方法两个种子之间的差异"
                    "可能同样大（图中为这一个种子）。要得出结论，请运行多个种子：`dvc exp run -S 'train.seeds=[0,1,2]'`。",
        "accuracy_is_better": "重要性采样的最终测试准确率高于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
                              "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_is_worse": "重要性采样的最终测试准确率低于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
                             "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_within_noise": "最终测试准确率相差 {diff:+.2f} 个百分点，但 95% 区间 [{low:+.2f}, {high:+.2f}] "
                                 "包含零：在这个种子数下无法区分重要性采样与均匀采样。",
        "higher_upper_bound": "重要性采样", "higher_uniform": "均匀采样",
        "regime_off": "重要性采样从未启用（tau 始终未超过 tau_th）：两次运行都是均匀 SGD，因此不得出重要性采样与均匀采样"
                      "对比的结论。不同种子的均匀运行最终测试准确率相差 {spread:.2f} 个百分点（标准差）：这就是该设置下的"
                      "噪声水平。训练集拟合得足够好时重要性采样才会启用：可增加 `train.budget` 或提前 `train.lr_milestones`。",
        "regime_off_one_seed": "重要性采样从未启用（tau 始终未超过 tau_th）：两次运行都是均匀 SGD，因此不得出重要性采样与"
                               "均匀采样对比的结论。两者种子相同，其差距（{gap:.2f} 个百分点）只反映各自在预算内完成的迭代数；"
                               "噪声水平需要多个种子：`dvc exp run -S 'train.seeds=[0,1,2]'`。训练集拟合得足够好时重要性"
                               "采样才会启用：可增加 `train.budget` 或提前 `train.lr_milestones`。",
        "regime_partial": "重要性采样在 {share:.1%} 的迭代中启用：部分迭代使用了重要性采样。",
        "regime_on": "重要性采样在 {share:.1%} 的迭代中启用。",
        "train_accuracy_misleading": "重要性采样在采样样本上的训练准确率低于均匀采样，但消除采样偏差后（加权准确率"
                                     "和无偏损失）其对训练集的拟合并不更差：普通训练准确率对重要性采样没有意义（笔记实验 2）。",
        "train_fit_worse": "重要性采样的加权训练准确率更低，无偏训练损失也更高：在预算内对训练集的拟合更差。",
        "train_fit_not_worse": "消除采样偏差后，重要性采样对训练集的拟合不比均匀采样差。",
        "runs_diverged": "发散（损失或分数变为 NaN 或无穷大）：{diverged_text}。不从发散的运行得出准确率结论；"
                         "发散本身就是结果。",
        "tta_never": "在 {never} 个种子上，重要性采样在预算内未达到均匀采样的最终测试准确率。",
        "tta_same": "重要性采样与均匀采样达到均匀采样最终测试准确率的时间相差不到一轮训练时间（{tta_is:.0f} s 与 "
                    "{tta_uniform:.0f} s；一轮需 {epoch:.0f} s）：相同。",
        "tta_faster": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最终测试准确率，均匀采样在 {tta_uniform:.0f} s："
                      "重要性采样更快。",
        "tta_slower": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最终测试准确率，均匀采样在 {tta_uniform:.0f} s："
                      "重要性采样更慢。",
        "lr_affects_is": "在某次学习率变化处，重要性采样占比的变化超过一半：学习率影响重要性采样（笔记实验 3 和 5）。",
        "lr_no_effect": "没有哪次学习率变化使重要性采样占比变化超过一半。",
        "lr_constant": "记录的各轮之间没有学习率变化（学习率固定，如笔记实验 4，或轮数太少）：没有可比较的变化。",
        "never_on": "本次运行中重要性采样从未启用。",
        "switched_on": "当 tau 超过 tau_th 时，重要性采样自动启用。",
        "presample_proportional": "预采样时间与 p 成正比（R² = {r2:.3f}，截距 {intercept:+.2f} ms）：笔记实验 8 "
                                  "成立；更小的 p 使重要性采样更便宜。",
        "presample_linear_offset": "预采样时间与 p 成线性关系（R² = {r2:.3f}），每次迭代有 {intercept:+.2f} ms 的固定开销。",
        "presample_not_linear": "预采样时间与 p 不成线性关系（R² = {r2:.3f}）：测量噪声过大或硬件未饱和。",
        "fit_one_ratio": "只测量了一个预采样比例（p = {p}）：不拟合直线，也不判断预采样时间如何随 p 增长。请测量多个："
                         "`dvc exp run -S 'timing.presamples=[2,3,5,7]'`。",
        "non_model_negligible": "在每个比例下，非模型时间最多占重要性采样迭代的 {worst:.1%}：可以忽略（笔记实验 7）。",
        "non_model_large": "非模型时间最多占重要性采样迭代的 {worst:.1%}：不可忽略（笔记实验 6）。",
        "passes_correlated": "预采样前向与训练步时间同步变化（r = {corr:.2f}）。",
        "passes_not_correlated": "预采样前向与训练步时间没有强相关（r = {corr:.2f}）。",
        "passes_no_correlation": "每个比例测得的迭代太少，无法计算预采样与训练步时间的相关性：请增加 `timing.iterations`。",
        "cost_model_accurate": "代价模型 (p + 1 + k) b t 在每个比例下对迭代时间的预测误差都在 {error:.0%} 以内。",
        "cost_model_off": "代价模型 (p + 1 + k) b t 与实测迭代时间最多相差 {error:.0%}（见误差列）：它按训练前向的"
                          "每样本时间 t 计算 B 个预采样前向，而无梯度的大批量前向不一定与之相同。",
        "both_models_fit": "两个代价模型在每个比例下都在容差内：笔记模型 (p + 1 + k) b t 最多相差 {error:.0%}，"
                           "实测模型最多相差 {measured_error:.0%}。",
        "measured_model_fits": "实测代价模型符合：它在每个比例下的预测误差都在 {measured_error:.0%} 以内，而笔记模型 "
                               "(p + 1 + k) b t 最多相差 {error:.0%}，因为它按训练前向的 t 计算无梯度、分块的预采样前向。",
        "notebook_model_fits": "笔记代价模型在每个比例下的预测误差都在 {error:.0%} 以内；实测模型最多相差 "
                               "{measured_error:.0%}。",
        "neither_model_fits": "两个代价模型都未能在每个比例下落在容差内：笔记模型最多相差 {error:.0%}，实测模型最多相差 "
                              "{measured_error:.0%}。",
        "rule_list": [
            f"准确率：各种子上重要性采样与均匀采样最终测试准确率之差的均值；得出方向至少需要 {MIN_SEEDS} 个配对种子，"
            "且配对差值的 Student-t 95% 区间不含零。",
            "状态：整个运行中重要性采样迭代的占比（0：从未启用，此时不作任何对比结论；低于 50%：部分启用）。",
            "训练指标：在消除采样偏差后比较；加权训练准确率更低且无偏训练损失更高时，重要性采样拟合更差。",
            "发散：损失或分数变为 NaN 或无穷大的运行标为发散，不从中得出准确率结论。",
            "达到准确率的时间：运行首次在某轮结束时达到均匀采样最终测试准确率的训练时间；平均时间相差不到一轮训练"
            "时间即视为相同。",
            f"学习率：若某次学习率变化前后重要性采样占比之差超过两者中较大者的 {SHARP_CHANGE:.0%}，且较大者至少为 "
            f"{MIN_SHARE:.0%}，则计为剧烈变化。",
            f"预采样时间：至少 {MIN_RATIOS} 个比例时才拟合；R² >= {LINEAR_R2} 时为线性；若截距绝对值不超过最大 p 处"
            f"时间的 {PROPORTIONAL_INTERCEPT:.0%}，则为成正比。",
            f"非模型时间：在每个比例下不超过重要性采样迭代中位时间的 {NON_MODEL_NEGLIGIBLE:.0%} 时可忽略。",
            f"代价模型：在每个测得的比例下预测误差都在 {PREDICTION_TOLERANCE:.0%} 以内即为符合；r >= {STRONG_CORRELATION} "
            "为强相关。",
        ],
    },
}
LANGUAGES = tuple(TEXT)

# Sections 4 and 5: every method at equal time, and the speed-up at equal accuracy over budgets.
from isample.report.all_methods import SMOOTHING_EPOCHS  # noqa: E402
from isample.report.speedup import SAVES_TIME  # noqa: E402

SWEEP_COMMAND = "dvc exp run -S 'train.budgets=[50s,100s,200s]' -S 'train.seeds=[0,1]'"

TEXT["en"].update({
    "s4": "## 4. All methods at equal time",
    "s5": "## 5. Speed-up at equal accuracy",
    "method_reuse": "score reuse", "method_selective_backprop": "Selective-Backprop", "method_infobatch": "InfoBatch",
    "methods_budget": "Every method trained from the same initial weights for {budget:g} s of training time per seed "
                      "(the longest budget run), paired with the uniform run of the same seed.",
    "cols_methods": ["method", "seeds", "final test accuracy", "best test accuracy", "minus uniform (points)",
                     "95% interval", "a", "selected by score", "time to 90%", "time to 95%", "time to 100%"],
    "methods_note": "a is the method's iteration time minus the training step's, over the training step's (timing "
                    "stage; for upper_bound the notebook's a at its presample ratio: the presample's time over the "
                    "training step's). Time to X%: training time until the test accuracy, "
                    f"averaged over the last {SMOOTHING_EPOCHS} epochs, first reaches X% of uniform's best such "
                    "accuracy, as a ratio to uniform's own time (below 1: less time); `not reached` when it never does "
                    "on some seed. 'Selected by score': the share of iterations whose batch the method chose by "
                    "score (for IS, the iterations with IS on; for InfoBatch, those of epochs that pruned).",
    "not_reached": "not reached",
    "method_better": "{name} ends above uniform by {diff:+.2f} points over {n} seeds; the 95% interval [{low:+.2f}, "
                     "{high:+.2f}] excludes zero: better than uniform beyond the seed noise.",
    "method_worse": "{name} ends below uniform by {diff:+.2f} points over {n} seeds; the 95% interval [{low:+.2f}, "
                    "{high:+.2f}] excludes zero: worse than uniform beyond the seed noise.",
    "method_within_noise": "{name} differs from uniform by {diff:+.2f} points over {n} seeds, but the 95% interval "
                           "[{low:+.2f}, {high:+.2f}] includes zero: it cannot be told apart from uniform.",
    "method_one_seed": "{name}: {n} paired seed(s), too few for a direction (the difference between two seeds of one "
                       "method can be as large). Run `dvc exp run -S 'train.seeds=[0,1,2]'`.",
    "methods_best": "Ranked by the mean difference from uniform, the best method beyond noise is {name}.",
    "methods_none_better": "No method beats uniform beyond the seed noise at this budget.",
    "methods_too_few_seeds": "With fewer than the seeds a direction needs, the methods are listed by their mean "
                             "difference only; that order is not a ranking.",
    "cols_speedup": ["method", "uniform's budget (s)", "uniform's final accuracy", "speed-up", "95% interval",
                     "seeds not reaching it"],
    "speedup_note": "Each budget ran with its own learning-rate schedule, fully decayed within it. For each of "
                    "uniform's budgets, the budget a method needs to reach uniform's final test accuracy there is "
                    "interpolated on the log-budget axis between the method's own budgets; the speed-up is "
                    "uniform's budget over that one (above 1: the method needs less time). A target already reached "
                    "at the smallest budget gives a lower bound. Per seed, then the mean and its interval. † marks a "
                    "budget past the one where uniform's own accuracy peaks.",
    "speedup_one_budget": "Only one budget ran, so there is no accuracy-against-budget curve and no speed-up is "
                          f"drawn. Run several, each with its own schedule: `{SWEEP_COMMAND}`.",
    "speedup_saves_time": "{name} saves time: at every budget of uniform its speed-up interval lies above "
                          f"{SAVES_TIME:g} (median speed-up {{median:.2f}}).",
    "speedup_costs_time": "{name} costs time: at some budget no seed reaches uniform's accuracy within the budgets "
                          "run, or its speed-up interval lies below 1.",
    "speedup_within_noise": "{name} cannot be told apart from uniform in time to equal accuracy (some seeds reach "
                            "uniform's accuracy and some do not, or the intervals straddle 1).",
    "speedup_past_peak": "Uniform's final accuracy is highest at {peak:g} s and lower at {budgets} s: more training "
                         "time made it worse (over-fitting, or a schedule too long for the data), so the speed-ups "
                         "at those budgets are shown but not used for any conclusion.",
    "speedup_one_seed": "{name}: median speed-up {median:.2f} from one seed; a conclusion needs intervals over "
                        "several seeds.",
})
TEXT["en"]["rule_list"] += [
    f"All methods: each one's final test accuracy minus uniform's, paired by seed; better or worse needs at least "
    f"{MIN_SEEDS} seeds and a Student-t 95% interval excluding zero, else it cannot be told apart from uniform.",
    f"Speed-up: over uniform's budgets up to the one where its accuracy peaks, a method saves time when every 95% "
    f"interval of its speed-up lies above {SAVES_TIME:g}, and costs time when no seed reaches uniform's accuracy at "
    "some budget or an interval lies below 1.",
]
TEXT["zh"].update({
    "s4": "## 4. 等训练时间下的所有方法",
    "s5": "## 5. 等精度下的加速比",
    "method_reuse": "分数复用", "method_selective_backprop": "Selective-Backprop", "method_infobatch": "InfoBatch",
    "methods_budget": "每种方法从相同的初始权重出发，每个种子训练 {budget:g} 秒（所运行的最长预算），并与同一种子的均匀采样运行配对。",
    "cols_methods": ["方法", "种子数", "最终测试精度", "最佳测试精度", "减去均匀（百分点）", "95% 区间", "a", "按分数选择",
                     "达到 90% 的时间", "达到 95% 的时间", "达到 100% 的时间"],
    "methods_note": "a 为该方法的迭代时间减去训练步时间，再除以训练步时间（timing 阶段；upper_bound 为其预采样比下笔记中的 a："
                    "预采样时间除以训练步时间）。"
                    f"达到 X% 的时间：测试精度（最近 {SMOOTHING_EPOCHS} 个 epoch 的平均）首次达到均匀采样最佳平均精度的 X% "
                    "所需的训练时间，与均匀采样自身所需时间之比（小于 1 表示用时更少）；若某个种子始终未达到，记为“未达到”。"
                    "“按分数选择”：方法按分数选择批次的迭代比例（IS 为开启的迭代，InfoBatch 为发生剪枝的 epoch 中的迭代）。",
    "not_reached": "未达到",
    "method_better": "{name} 最终比均匀采样高 {diff:+.2f} 个百分点（{n} 个种子）；95% 区间 [{low:+.2f}, {high:+.2f}] "
                     "不含零：优于均匀采样，超出种子噪声。",
    "method_worse": "{name} 最终比均匀采样低 {diff:+.2f} 个百分点（{n} 个种子）；95% 区间 [{low:+.2f}, {high:+.2f}] "
                    "不含零：劣于均匀采样，超出种子噪声。",
    "method_within_noise": "{name} 与均匀采样相差 {diff:+.2f} 个百分点（{n} 个种子），但 95% 区间 [{low:+.2f}, "
                           "{high:+.2f}] 包含零：无法与均匀采样区分。",
    "method_one_seed": "{name}：仅 {n} 个配对种子，不足以判断方向（同一方法两个种子之间的差异可能同样大）。运行 "
                       "`dvc exp run -S 'train.seeds=[0,1,2]'`。",
    "methods_best": "按与均匀采样的平均差值排序，超出噪声的最佳方法是 {name}。",
    "methods_none_better": "在此预算下，没有方法在种子噪声之外优于均匀采样。",
    "methods_too_few_seeds": "种子数不足以判断方向，方法仅按平均差值列出；该顺序不是排名。",
    "cols_speedup": ["方法", "均匀采样预算（秒）", "均匀采样最终精度", "加速比", "95% 区间", "未达到的种子数"],
    "speedup_note": "每个预算使用各自的学习率计划，并在该预算内完全衰减。对均匀采样的每个预算，在对数预算轴上于该方法自己的预算之间插值，"
                    "得到其达到均匀采样最终测试精度所需的预算；加速比为均匀采样预算除以该预算（大于 1 表示更省时间）。"
                    "在最小预算处已达到的目标给出下界。先按种子计算，再取均值及其区间。† 表示超过均匀采样自身精度峰值的预算。",
    "speedup_one_budget": f"只运行了一个预算，因此没有精度-预算曲线，不给出加速比。请运行多个预算（各自的学习率计划）：`{SWEEP_COMMAND}`。",
    "speedup_saves_time": f"{{name}} 节省时间：在均匀采样的每个预算上，其加速比区间都高于 {SAVES_TIME:g}（加速比中位数 {{median:.2f}}）。",
    "speedup_costs_time": "{name} 耗费更多时间：在某个预算上，没有种子在所运行的预算内达到均匀采样的精度，或其加速比区间低于 1。",
    "speedup_within_noise": "{name} 在达到相同精度所需时间上无法与均匀采样区分（部分种子达到均匀采样的精度而部分没有，或区间跨越 1）。",
    "speedup_past_peak": "均匀采样的最终精度在 {peak:g} 秒时最高，在 {budgets} 秒时更低：更多训练时间反而更差（过拟合，或学习率计划对该数据过长），"
                         "因此这些预算上的加速比仅列出，不用于任何结论。",
    "speedup_one_seed": "{name}：单个种子的加速比中位数为 {median:.2f}；结论需要多个种子的区间。",
})
TEXT["zh"]["rule_list"] += [
    f"所有方法：各方法最终测试精度减去均匀采样的，按种子配对；判断优劣需要至少 {MIN_SEEDS} 个种子且 Student-t 95% 区间不含零，"
    "否则无法与均匀采样区分。",
    f"加速比：在均匀采样精度达到峰值及之前的预算上，若其加速比的 95% 区间都高于 {SAVES_TIME:g}，则该方法节省时间；"
    "若在某个预算上没有种子达到均匀采样的精度，或某个区间低于 1，则耗费时间。",
]
