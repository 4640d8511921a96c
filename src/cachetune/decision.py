"""The cache's decision: which stored candidate, if any, answers a prompt.

The cosine of the nearest entry is one number, and the wrong answers that remain are the ones it cannot see (a
negation, a changed number, a swapped name: see `cachetune.facts`). The decision takes a second look at the top
candidates the store returns:

1. candidates: up to `top_k` entries at least `candidate_threshold` similar to the prompt (default: the domain's
   `similarity_threshold`; with a verifier, the lower threshold the verifier recommends, so that it sees the
   rewordings a cosine scores too low);
2. guards: each guard of `guards` that finds the prompt and a candidate disagree refuses that candidate
   (`guard:numbers`, `guard:negation`, ...);
3. verifier: a trained verifier (`cachetune.verifier`), when there is one, gives each remaining candidate the
   probability that its answer serves the prompt; below `verifier_threshold` it is refused (`verifier`);
4. without a verifier, a candidate below `similarity_threshold` is refused (`threshold`);
5. the best remaining candidate is served: the highest probability, else the highest similarity.

`Decider.best` gives the score of the best candidate without the last threshold, which is what an evaluation sweeps.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cachetune.facts import GUARDS, disagreements

GuardName = Literal["numbers", "dates", "negation", "operations", "names", "scope"]
assert set(GuardName.__args__) == set(GUARDS)


class VerifySettings(BaseModel):
    """How the cache takes a second look at its candidates: a cache domain's `verify:` block, and `cachetune evaluate`'s
    options of the same names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    guards: tuple[GuardName, ...] = Field((), description="Guards that refuse a candidate whose facts disagree: " + ", ".join(GUARDS) + ".")
    verifier: str | None = Field(None, description="A trained verifier (folder or shipped name, e.g. programming-verifier).")
    verifier_threshold: float | None = Field(
        None, gt=0, lt=1, description="Probability a candidate needs to be served; default: the verifier's, chosen on validation."
    )
    top_k: int = Field(5, ge=1, le=100, description="Candidates the store returns for the second look.")
    candidate_threshold: float | None = Field(
        None, ge=-1, le=1, description="Similarity a candidate needs to be looked at; default: the verifier's, else the domain's threshold."
    )

    @property
    def active(self) -> bool:
        return bool(self.guards) or self.verifier is not None


@dataclass(frozen=True)
class Refusal:
    """A candidate that was not served, and why: `guard:NAME`, `verifier` (with its probability) or `threshold`."""

    index: int
    reason: str
    score: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The candidate served (its index in the list given, None: none), its score, and every refusal."""

    chosen: int | None
    score: float | None
    refusals: tuple[Refusal, ...] = ()


class Decider:
    """Chooses among a prompt's candidates (see the module's docstring).

    Args:
        similarity_threshold: the domain's threshold, which the similarity of a candidate must reach without a verifier.
        settings: the `verify` settings; None: the cosine alone decides.
        verifier: the loaded verifier `settings.verifier` names (anything with `probabilities(prompts, candidates,
            similarities)`, `threshold` and `candidate_threshold`).
    """

    def __init__(self, similarity_threshold: float, settings: VerifySettings | None = None, verifier=None) -> None:
        self.settings = settings or VerifySettings()
        self.verifier = verifier
        self.similarity_threshold = similarity_threshold
        if verifier is not None:
            self.threshold = self.settings.verifier_threshold or verifier.threshold
            default_candidates = verifier.candidate_threshold
        else:
            self.threshold = similarity_threshold
            default_candidates = similarity_threshold
        self.candidate_threshold = (
            self.settings.candidate_threshold if self.settings.candidate_threshold is not None else default_candidates
        )
        self.top_k = self.settings.top_k if self.settings.active else 1

    def best(self, prompts: Sequence[str], candidates: Sequence[Sequence[tuple[str, float]]]) -> list[Verdict]:
        """Per prompt, its best candidate and score before the last threshold; `candidates[i]` is prompt i's (text,
        similarity) list, most similar first (those under `candidate_threshold` are skipped)."""
        refusals: list[list[Refusal]] = [[] for _ in prompts]
        open_: list[list[int]] = []
        for number, (prompt, found) in enumerate(zip(prompts, candidates)):
            kept = []
            for index, (text, similarity) in enumerate(found[: self.top_k]):
                if similarity < self.candidate_threshold:
                    continue
                failed = disagreements(prompt, text, self.settings.guards) if self.settings.guards else []
                if failed:
                    refusals[number].append(Refusal(index, f"guard:{failed[0]}", similarity))
                else:
                    kept.append(index)
            open_.append(kept)
        if self.verifier is None:
            scores = [[found[i][1] for i in kept] for found, kept in zip(candidates, open_)]
        else:
            flat = [(number, index) for number, kept in enumerate(open_) for index in kept]
            probabilities = (
                self.verifier.probabilities(
                    [prompts[n] for n, _ in flat],
                    [candidates[n][i][0] for n, i in flat],
                    np.array([candidates[n][i][1] for n, i in flat], dtype=np.float32),
                )
                if flat
                else np.zeros(0)
            )
            scores = [[] for _ in prompts]
            for (number, _), probability in zip(flat, probabilities):
                scores[number].append(float(probability))
        verdicts = []
        for number, kept in enumerate(open_):
            if not kept:
                verdicts.append(Verdict(None, None, tuple(refusals[number])))
                continue
            best = int(np.argmax(scores[number]))
            others = [Refusal(index, "outranked", score) for k, (index, score) in enumerate(zip(kept, scores[number])) if k != best]
            verdicts.append(Verdict(kept[best], scores[number][best], tuple(refusals[number] + others)))
        return verdicts

    def decide(self, prompt: str, candidates: Sequence[tuple[str, float]]) -> Verdict:
        """The candidate to serve for `prompt`, or none, with the reason for every candidate not served."""
        verdict = self.best([prompt], [candidates])[0]
        if verdict.chosen is None or verdict.score >= self.threshold:
            return verdict
        reason = "verifier" if self.verifier is not None else "threshold"
        refused = [Refusal(verdict.chosen, reason, verdict.score)]
        refused += [Refusal(r.index, reason, r.score) if r.reason == "outranked" else r for r in verdict.refusals]
        return Verdict(None, None, tuple(sorted(refused, key=lambda r: r.index)))
