"""Names of the results xlray logs and reports, built and parsed here only.

An `xlray evaluate` run logs, in its own run (inside a sweep trial under ``zero_shot.<condition>.``):
    <language>.<metric>, <language>.<metric>_std, <language>.seeds   mean, sample std and number of seeds
    <language>.dev_<metric>                                         the same on the task's dev split, if it has one
    targets_mean.<metric>                                           mean over the non-English languages
    <language>.<metric>.vs_<other>.p_value_seeds                   test over seeds against an earlier condition
                                                                    (Welch's t on per-seed scores; missing.* tag
                                                                    with the reason if a side has < 3 seeds)
    <language>.<metric>.vs_<other>.<delta | p_value>                paired test over examples, this set of seeds
    seed<s>.<language>.<metric>, seed<s>.<language>.n.<count>       one seed's scores and counts
    seed<s>.data.<count>, seed<s>.train.<term>_loss, seed<s>.train.lr   one seed's training (step = epoch)
A sweep trial's results (Tune result keys and MLflow metrics):
    zero_shot.<condition>.<language | targets_mean>.<metric>        and the keys above under that prefix
    align.<checkpoint>.<aligned | unaligned | drift | ratio>.<language | all>
    concepts.<checkpoint>.<lang>-en.<metric>
"""

from __future__ import annotations

from dataclasses import dataclass

ZERO_SHOT, ALIGN, CONCEPTS = "zero_shot", "align", "concepts"
HP_PARAM = "hp."  # a trial's hyperparameters are its run params hp.<space key>
TARGETS_MEAN = "targets_mean"  # the unweighted mean over the zero-shot target languages
ALL = "all"  # align.*: every language of the adjustment together
SEEDS = "seeds"
STD = "_std"
P_VALUE = "p_value"  # the paired test over examples (for this set of seeds)
TESTS = ("delta", P_VALUE)  # what the paired test over examples logs
P_VALUE_SEEDS = "p_value_seeds"  # what the test over seeds logs (seed variance in its null)
ALIGN_KINDS = ("aligned", "unaligned", "drift", "ratio")
TRAIN_LR = "train.lr"
DEV = "dev_"  # a metric on the task's dev split (the split to tune on); the bare metric is the test split's


# An evaluate run's names (relative to its run or prefix).


def score(language: str, key: str) -> str:
    """``<language>.<key>``: a metric (or its ``_std``, or ``seeds``) of one language or ``targets_mean``."""
    return f"{language}.{key}"


def std(metric: str) -> str:
    """The sample std over seeds of ``metric``: ``<metric>_std``."""
    return f"{metric}{STD}"


def is_metric(key: str) -> bool:
    """Whether a key of a language's summary row (``accuracy``, ``accuracy_std``, ``seeds``) is a metric's mean."""
    return not key.endswith(STD) and key != SEEDS


def dev(name: str) -> str:
    """``dev_<name>``: a metric (``dev_accuracy``) or count (``dev_examples``) of the task's dev split, beside the
    test split's ``<name>``."""
    return f"{DEV}{name}"


def is_dev(metric: str) -> bool:
    """Whether a metric (``dev_accuracy``, ``dev_f1_std``) is the dev split's rather than the test split's."""
    return metric.startswith(DEV)


def count(language: str, name: str) -> str:
    """``<language>.n.<name>``: how many examples (truncated inputs, ...) a language's evaluation counted."""
    return f"{language}.n.{name}"


def paired_test(language: str, metric: str, other: str, statistic: str) -> str:
    """``<language>.<metric>.vs_<other>.<statistic>``: this condition against ``other`` (statistic in TESTS:
    the paired test over examples, for this set of seeds)."""
    return f"{language}.{metric}.vs_{other}.{statistic}"


def seed_test(language: str, metric: str, other: str) -> str:
    """``<language>.<metric>.vs_<other>.p_value_seeds``: this condition against ``other`` by the test over seeds
    (Welch's t on per-seed scores), whose null includes seed-to-seed variance."""
    return paired_test(language, metric, other, P_VALUE_SEEDS)


def seed_prefix(seed: int) -> str:
    """The prefix of one seed's names inside a run that logs several seeds."""
    return f"seed{seed}."


def data_count(name: str) -> str:
    """``data.<name>``: a count of the training data (examples, truncated, pool pairs)."""
    return f"data.{name}"


def train_loss(term: str) -> str:
    """``train.<term>_loss``: an epoch's mean of one loss term (task, align, reg, total)."""
    return f"train.{term}_loss"


# A sweep trial's names.


def zero_shot_prefix(condition: str) -> str:
    """Where a trial logs one condition's evaluate run: ``zero_shot.<condition>.``."""
    return f"{ZERO_SHOT}.{condition}."


def zero_shot(condition: str, language: str, key: str) -> str:
    """``zero_shot.<condition>.<language | targets_mean>.<key>``."""
    return zero_shot_prefix(condition) + score(language, key)


def align(checkpoint: str, kind: str, where: str) -> str:
    """``align.<checkpoint>.<kind>.<language | all>``."""
    return f"{ALIGN}.{checkpoint}.{kind}.{where}"


def concepts_prefix(checkpoint: str, language: str) -> str:
    """Where a trial logs one checkpoint's concepts run for one language: ``concepts.<checkpoint>.<lang>-en.``."""
    return f"{CONCEPTS}.{checkpoint}.{language}-en."


# Parsing.


@dataclass(frozen=True)
class ResultName:
    """A trial result's name cut at its dots: ``<family>.<source>.<rest...>``.

    ``source``: the condition (zero_shot) or the checkpoint (align, concepts); None if the name stops before it.
    ``rest``: zero_shot: (language, metric, ...); align: (kind, language or all); concepts: (<lang>-en, metric).
    """

    family: str
    source: str | None
    rest: tuple[str, ...]


def parse(name: str) -> ResultName:
    family, *more = name.split(".")
    return ResultName(family, more[0] if more else None, tuple(more[1:]))


@dataclass(frozen=True)
class ZeroShotScore:
    """One condition's result over seeds in a language: a metric's mean or std, or a paired test's statistic."""

    condition: str
    language: str  # a language or targets_mean
    metric: str
    std: bool = False
    versus: str | None = None  # the other condition of a paired test
    test: str | None = None  # with versus: delta, p_value (over examples, this set of seeds) or p_value_seeds

    @property
    def over_seeds(self) -> bool:
        """Whether this is the p-value of the test over seeds (not the paired test over examples)."""
        return self.test == P_VALUE_SEEDS

    @property
    def name(self) -> str:
        if self.versus is not None:
            return zero_shot_prefix(self.condition) + paired_test(self.language, self.metric, self.versus, self.test)
        return zero_shot(self.condition, self.language, std(self.metric) if self.std else self.metric)


def parse_zero_shot(name: str) -> ZeroShotScore | None:
    """The score a ``zero_shot.*`` name holds; None for every other name: one seed's results, counts, the number
    of seeds, align.*, concepts.*."""
    r = parse(name)
    if r.family != ZERO_SHOT or r.source is None or len(r.rest) < 2 or r.rest[0].startswith("seed"):
        return None
    language, metric, *test = r.rest
    if metric in (SEEDS, "n"):
        return None
    if not test:
        spread = metric.endswith(STD)
        return ZeroShotScore(r.source, language, metric.removesuffix(STD) if spread else metric, spread)
    if len(test) == 2 and test[0].startswith("vs_"):
        return ZeroShotScore(r.source, language, metric, versus=test[0].removeprefix("vs_"), test=test[1])
    return None


def is_over_seeds(name: str) -> bool:
    """A ``zero_shot.*`` name of the whole condition: not one seed's result, nor the number of seeds."""
    r = parse(name)
    return r.family == ZERO_SHOT and r.source is not None and not any(p.startswith("seed") for p in (r.source, *r.rest))


# An `xlray sentence-alignment` run's names (per layer with step = layer, or pooled over layers).


def language_pair(source: str, target: str) -> str:
    """``<source>-<target>``: a pair of a sentence-alignment run, its pivot (or first language) first."""
    return f"{source}-{target}"


def sentence_score(measure: str, pair: str) -> str:
    """``<measure>.<pair>``: a layer's ``mexa``, ``cosine_gap`` or ``cka`` of one pair (step = layer)."""
    return f"{measure}.{pair}"


def retrieval(pair: str, direction: str) -> str:
    """``retrieval.<pair>.<forward | backward>``: a layer's top-1 retrieval, pivot -> language (forward) or back."""
    return f"retrieval.{pair}.{direction}"


def mexa_pooled(pair: str, how: str) -> str:
    """``mexa_<mean | max>.<pair>``: a pair's MEXA pooled over the scored layers."""
    return f"mexa_{how}.{pair}"


# A sweep trial's sentence-alignment step: the names above, under one prefix, in the trial's run.

SENTENCE_ALIGNMENT = "sentence_alignment"
MEXA_POOLINGS = ("mean", "max")  # how MEXA is pooled over layers (mexa_pooled)


def sentence_alignment(name: str) -> str:
    """``sentence_alignment.<name>``: a sentence-alignment name inside a trial, e.g. ``sentence_alignment.mexa.<pair>``
    (step = layer) or the Tune result key ``sentence_alignment.mexa_mean.<pair>``; with ``name`` "" the prefix."""
    return f"{SENTENCE_ALIGNMENT}.{name}"
