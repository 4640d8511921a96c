"""Training files -> `datasets.Dataset`s in the column layout each loss expects.

sentence-transformers reads input columns by position and a column named `label` as the label:
- ranking and triplet losses: (anchor, positive, negative)
- pair losses: (sentence1, sentence2, label)
- batch-hard triplet: (text, label), label = intent id
"""

from dataclasses import dataclass
from pathlib import Path

from cachetune.data.split import component_labels
from cachetune.models import files_sha256
from cachetune.records import Pair, Triplet, read_pairs_or_triplets
from cachetune.train.losses import FileKind


@dataclass(frozen=True)
class TrainingFile:
    path: Path
    kind: FileKind
    records: list  # Triplet or Pair records
    sha256: str


def read_training_file(path: Path) -> TrainingFile:
    """Read a triplet or pair file, telling which by the fields of its first record."""
    kind, records = read_pairs_or_triplets(path)
    return TrainingFile(Path(path), kind, records, files_sha256([path]))


def triplet_columns(triplets: list[Triplet]) -> dict[str, list]:
    return {
        "anchor": [t.anchor for t in triplets],
        "positive": [t.positive for t in triplets],
        "negative": [t.hard_negative for t in triplets],
    }


def pair_columns(pairs: list[Pair]) -> dict[str, list]:
    return {"sentence1": [p.query1 for p in pairs], "sentence2": [p.query2 for p in pairs], "label": [float(p.label) for p in pairs]}


def labelled_text_columns(file: TrainingFile) -> dict[str, list]:
    """Texts labelled by intent: texts a triplet or a label-1 pair puts together share one label."""
    same = (
        [(t.anchor, t.positive) for t in file.records]
        if file.kind == "triplets"
        else [(p.query1, p.query2) for p in file.records if p.label == 1]
    )
    texts = (
        [text for t in file.records for text in (t.anchor, t.positive, t.hard_negative)]
        if file.kind == "triplets"
        else [text for p in file.records for text in (p.query1, p.query2)]
    )
    index = {text: number for number, text in enumerate(dict.fromkeys(texts))}
    labels = component_labels(len(index), [index[a] for a, _ in same], [index[b] for _, b in same])
    return {"text": list(index), "label": labels}


def to_dataset(file: TrainingFile, labelled_texts: bool):
    import datasets

    if labelled_texts:
        return datasets.Dataset.from_dict(labelled_text_columns(file))
    columns = triplet_columns(file.records) if file.kind == "triplets" else pair_columns(file.records)
    return datasets.Dataset.from_dict(columns)


def preserve_dataset(model, texts: list[str]):
    """General texts with the model's own (base) vectors as labels, for the preservation loss. The column is not
    called `text`, which the batch sampler reads as intent-labelled texts."""
    import datasets

    vectors = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    return datasets.Dataset.from_dict({"sentence": texts, "label": vectors.tolist()})
