"""Training losses by name: a thin factory over sentence-transformers' losses, none written again.

Each loss says which training files it can learn from:
- triplet files (anchor, positive, hard_negative) feed the ranking and triplet losses;
- pair files (query1, query2, label) feed the pair losses;
- batch-hard triplet takes either, as texts labelled by intent (a triplet's anchor and positive share a
  label; texts joined by a label-1 pair share a label).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cachetune.train.settings import Distance, LossName, TrainSettings

FileKind = Literal["triplets", "pairs"]


@dataclass(frozen=True)
class LossOptions:
    """A loss's temperature and margin: the settings' where given, else the loss's own default."""

    temperature: float | None
    margin: float | None


@dataclass(frozen=True)
class LossSpec:
    reads: frozenset[str]  # file kinds it can learn from
    temperature: float | None  # default temperature, for losses that have one
    margin: Callable[[Distance], float] | None  # default margin by distance, for losses that have one
    build: Callable  # (model, settings, options, guide) -> torch module
    about: str


def _mnr(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=1 / options.temperature)


def _cached_mnr(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    return CachedMultipleNegativesRankingLoss(model, scale=1 / options.temperature, mini_batch_size=settings.mini_batch_size)


def _gist(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

    return GISTEmbedLoss(model, guide=guide(), temperature=options.temperature)


def _triplet(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss

    metric = TripletDistanceMetric.COSINE if settings.distance == "cosine" else TripletDistanceMetric.EUCLIDEAN
    return TripletLoss(model, distance_metric=metric, triplet_margin=options.margin)


def _batch_triplet(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import (
        BatchAllTripletLoss,
        BatchHardTripletLoss,
        BatchHardTripletLossDistanceFunction,
        BatchSemiHardTripletLoss,
    )

    loss_class = {"hardest": BatchHardTripletLoss, "semi-hard": BatchSemiHardTripletLoss, "all": BatchAllTripletLoss}[settings.mining]
    distance = (
        BatchHardTripletLossDistanceFunction.cosine_distance
        if settings.distance == "cosine"
        else BatchHardTripletLossDistanceFunction.euclidean_distance
    )
    return loss_class(model, distance_metric=distance, margin=options.margin)


def _contrastive(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import ContrastiveLoss, SiameseDistanceMetric

    return ContrastiveLoss(model, distance_metric=SiameseDistanceMetric.COSINE_DISTANCE, margin=options.margin)


def _online_contrastive(model, settings, options, guide):
    from sentence_transformers.sentence_transformer.losses import OnlineContrastiveLoss, SiameseDistanceMetric

    return OnlineContrastiveLoss(model, distance_metric=SiameseDistanceMetric.COSINE_DISTANCE, margin=options.margin)


def preservation_loss(model, weight: float):
    """`weight` x the cosine distance between the model's embeddings of general texts and the base model's, given as
    labels: EmbedDistill's embedding matching (Kim et al., 2023, arXiv:2301.12005) with the base model as the teacher,
    so training moves the domain's texts and leaves the general ones where they were."""
    from sentence_transformers.sentence_transformer.losses import EmbedDistillLoss

    class WeightedEmbedDistillLoss(EmbedDistillLoss):
        def forward(self, sentence_features, labels):
            return weight * super().forward(sentence_features, labels)

    return WeightedEmbedDistillLoss(model, distance_metric="cosine")


TRIPLETS, PAIRS = frozenset({"triplets"}), frozenset({"pairs"})


def _by_distance(cosine: float, euclidean: float) -> Callable[[Distance], float]:
    return lambda distance: cosine if distance == "cosine" else euclidean


LOSSES: dict[LossName, LossSpec] = {
    "mnr": LossSpec(
        TRIPLETS, 0.05, None, _mnr, "Multiple negatives ranking with the hard negative column (Henderson et al., 2017, arXiv:1705.00652)"
    ),
    "infonce": LossSpec(
        TRIPLETS, 0.07, None, _mnr, "InfoNCE: the same ranking loss at temperature 0.07 (van den Oord et al., 2018, arXiv:1807.03748)"
    ),
    "cached-mnr": LossSpec(
        TRIPLETS, 0.05, None, _cached_mnr, "MNR with gradient caching, large batches in small memory (Gao et al., 2021, arXiv:2101.06983)"
    ),
    "gist": LossSpec(
        TRIPLETS,
        0.01,
        None,
        _gist,
        "GISTEmbed: the base model as a guide drops in-batch false negatives (Solatorio, 2024, arXiv:2402.16829)",
    ),
    "triplet": LossSpec(TRIPLETS, None, _by_distance(0.3, 5.0), _triplet, "Triplet margin loss (Schroff et al., 2015, arXiv:1503.03832)"),
    "hard-triplet": LossSpec(
        TRIPLETS | PAIRS,
        None,
        _by_distance(0.3, 5.0),
        _batch_triplet,
        "Batch-hard/semi-hard/all triplet mining over intent labels (Hermans et al., 2017, arXiv:1703.07737)",
    ),
    "cosine": LossSpec(
        PAIRS, None, _by_distance(0.5, 0.5), _contrastive, "Contrastive loss on labelled pairs, cosine distance (Hadsell et al., 2006)"
    ),
    "online-contrastive": LossSpec(
        PAIRS,
        None,
        _by_distance(0.5, 0.5),
        _online_contrastive,
        "Contrastive loss on the hard positives and negatives of each batch (sentence-transformers)",
    ),
}


def loss_options(name: LossName, settings: TrainSettings) -> LossOptions:
    """Loss `name`'s temperature and margin under `settings`."""
    spec = LOSSES[name]
    temperature = settings.temperature if settings.temperature is not None else spec.temperature
    margin = settings.margin if settings.margin is not None or spec.margin is None else spec.margin(settings.distance)
    return LossOptions(temperature if spec.temperature is not None else None, margin if spec.margin is not None else None)


def loss_for(kind: FileKind, losses: tuple[LossName, ...]) -> LossName | None:
    """The first of the requested losses that can learn from a file of this kind."""
    return next((name for name in losses if kind in LOSSES[name].reads), None)
