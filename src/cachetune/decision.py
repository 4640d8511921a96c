"""The cache's decision: which stored candidate, if any, answers a prompt.

The cosine of the nearest entry is one number, and the wrong answers that remain are the ones it cannot see (a
negation, a changed number, a swapped name: see `cachetune.facts`). The decision takes a second look at the top
candidates the store returns:

1. candidates: up to `top_k` entries at least `candidate_threshold` similar to the prompt (default: the domain's
   `similarity_threshold`);
2. guards: each guard of `guards` that finds the prompt and a candidate disagree refuses that candidate
   (`guard:numbers`, `guard:negation`, ...), so that a look-alike ranked first does not hide a true repeat below it;
3. a candidate below `similarity_threshold` is refused (`threshold`);
4. the most similar remaining candidate is served; the others are `outranked`.

A trained verifier (a cross-encoder over the pair, calibrated on validation) was measured as a further step and did
not beat the cosine on the held-out replay (experiments/results/decision.md), so it is not part of the decision.
`Decider.best` gives the best candidate without the last threshold, which is what an evaluation sweeps.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cachetune.facts import GUARDS, disagreements

GuardName = Literal["numbers", "dates", "negation", "operations", "names", "scope"]
assert set(GuardName.__args__) == set(GUARDS)


class VerifySettings(BaseModel):
    """How the cache takes a second look at its candidates: a cache domain's `verify:` block, and `cachetune evaluate`'s
    options of the same names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    guards: tuple[GuardName, ...] = Field((), description="Guards that refuse a candidate whose facts disagree: " + ", ".join(GUARDS) + ".")
    top_k: int = Field(5, ge=1, le=100, description="Candidates the store returns for the second look.")
    candidate_threshold: float | None = Field(
        None, ge=-1, le=1, description="Similarity a candidate needs to be looked at; default: the domain's threshold."
    )


@dataclass(frozen=True)
class Refusal:
    """A candidate that was not served (its index in the list given), why (`guard:NAME`, `threshold`, `outranked`),
    and its similarity."""

    index: int
    reason: str
    similarity: float


@dataclass(frozen=True)
class Verdict:
    """The candidate served (its index in the list given, None: none), its similarity, and every refusal."""

    chosen: int | None
    similarity: float | None
    refusals: tuple[Refusal, ...] = ()


class Decider:
    """Chooses among a prompt's candidates (see the module's docstring).

    Args:
        similarity_threshold: the domain's threshold, which the similarity of the served candidate must reach.
        settings: the `verify` settings; None: the cosine of the nearest entry alone decides.
    """

    def __init__(self, similarity_threshold: float, settings: VerifySettings | None = None) -> None:
        self.settings = settings or VerifySettings()
        self.similarity_threshold = similarity_threshold
        self.candidate_threshold = (
            self.settings.candidate_threshold if self.settings.candidate_threshold is not None else similarity_threshold
        )
        self.top_k = self.settings.top_k if self.settings.guards else 1

    def best(self, prompt: str, candidates: Sequence[tuple[str, float]]) -> Verdict:
        """The best candidate before the last threshold; `candidates` are (text, similarity), most similar first
        (those under `candidate_threshold` are skipped)."""
        refusals, chosen = [], None
        for index, (text, similarity) in enumerate(candidates[: self.top_k]):
            if similarity < self.candidate_threshold:
                continue
            failed = disagreements(prompt, text, self.settings.guards) if self.settings.guards else []
            if failed:
                refusals.append(Refusal(index, f"guard:{failed[0]}", similarity))
            elif chosen is None:
                chosen = index
            else:
                refusals.append(Refusal(index, "outranked", similarity))
        return Verdict(chosen, candidates[chosen][1] if chosen is not None else None, tuple(refusals))

    def decide(self, prompt: str, candidates: Sequence[tuple[str, float]]) -> Verdict:
        """The candidate to serve for `prompt`, or none, with the reason for every candidate not served."""
        verdict = self.best(prompt, candidates)
        if verdict.chosen is None or verdict.similarity >= self.similarity_threshold:
            return verdict
        refused = [Refusal(verdict.chosen, "threshold", verdict.similarity)]
        refused += [Refusal(r.index, "threshold", r.similarity) if r.reason == "outranked" else r for r in verdict.refusals]
        return Verdict(None, None, tuple(sorted(refused, key=lambda r: r.index)))
