"""Providers in sequence (``local,census``): only the misses go onward.

The chain is also where deduplication lives, because "the same question"
depends on the stage: a remote geocoder is asked about a building (street
without unit + locality), so forty flats cost one request; the offline
provider looks up exact keys. Answers are memoised per stage for the life of
the chain object (the job keeps it for the whole run and seeds it from
earlier results after a resume). Errors are not memoised: the next household
with that address gets a fresh attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cocoa.providers.base import (
    GeocodeRequest,
    GeocodeResult,
    GeocodeStatus,
    Provider,
    ProviderOutage,
    ProviderStats,
)

MemoKey = tuple[str, str]

# When stages disagree the more useful answer wins: a later stage's no-match
# must not hide an earlier tie, and an error (we do not know) beats no-match
# (we know there is nothing) so the household is retried later.
_RANK = {GeocodeStatus.MATCHED: 3, GeocodeStatus.TIE: 2, GeocodeStatus.ERROR: 1,
         GeocodeStatus.NO_MATCH: 0}


def dedupe_key(stage: Provider, request: GeocodeRequest) -> str:
    """What makes two requests the same question for this stage."""
    if getattr(stage, "matches_on_keys", False):
        return "\x1f".join(request.all_keys)
    return request.query_key


def better(old: GeocodeResult | None, new: GeocodeResult) -> GeocodeResult:
    if old is None or _RANK[new.status] >= _RANK[old.status]:
        return new
    return old


class ChainProvider:
    """A :class:`Provider` made of stages, with per-stage memo and dedupe."""

    def __init__(self, stages: Sequence[Provider]) -> None:
        if not stages:
            raise ValueError("a provider chain needs at least one provider")
        self.stages = list(stages)
        self.name = ",".join(s.name for s in self.stages)
        self.memo: dict[MemoKey, GeocodeResult] = {}
        self._cache_hits = 0

    @property
    def stats(self) -> ProviderStats:
        return ProviderStats(
            requests_sent=sum(s.stats.requests_sent for s in self.stages),
            retries=sum(s.stats.retries for s in self.stages),
            cache_hits=self._cache_hits,
        )

    def remember(self, stage_name: str, request: GeocodeRequest, result: GeocodeResult) -> None:
        """Seed the memo with an answer obtained earlier (e.g. read back from
        the database after a resume). Errors are never remembered."""
        stage = next((s for s in self.stages if s.name == stage_name), None)
        if stage is not None and result.status is not GeocodeStatus.ERROR:
            self.memo[(stage.name, dedupe_key(stage, request))] = result

    def geocode(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        combined: dict[str, GeocodeResult] = {}
        pending = list(requests)
        for position, stage in enumerate(self.stages):
            if not pending:
                break
            last = position == len(self.stages) - 1
            try:
                answers = self._ask(stage, pending)
            except ProviderOutage as exc:
                raise ProviderOutage(
                    exc.message, partial=_final(requests, combined, pending, exc.partial, last)
                ) from exc
            for request in pending:
                combined[request.id] = better(combined.get(request.id), answers[request.id])
            pending = [r for r in pending if answers[r.id].status is not GeocodeStatus.MATCHED]
        return [combined[r.id] for r in requests]

    def _ask(self, stage: Provider, pending: list[GeocodeRequest]) -> dict[str, GeocodeResult]:
        """Answer from the memo where possible; send each new question once.
        Stages that answer cheaply themselves (``memoise = False``: the local
        lookup) skip the bookkeeping, which would cost more than it saves."""
        if not getattr(stage, "memoise", True):
            return {r.id: r for r in stage.geocode(pending)}
        answers: dict[str, GeocodeResult] = {}
        waiting: dict[str, list[GeocodeRequest]] = {}
        for request in pending:
            key = dedupe_key(stage, request)
            known = self.memo.get((stage.name, key))
            if known is not None:
                answers[request.id] = known.with_id(request.id)
                self._cache_hits += 1
            elif key in waiting:
                waiting[key].append(request)
                self._cache_hits += 1
            else:
                waiting[key] = [request]
        if waiting:
            try:
                fresh = stage.geocode([group[0] for group in waiting.values()])
            except ProviderOutage as exc:
                self._absorb(stage, waiting, exc.partial, answers)
                raise ProviderOutage(exc.message, partial=list(answers.values())) from exc
            self._absorb(stage, waiting, fresh, answers)
        return answers

    def _absorb(
        self, stage: Provider, waiting: dict[str, list[GeocodeRequest]],
        results: Iterable[GeocodeResult], answers: dict[str, GeocodeResult],
    ) -> None:
        by_id = {r.id: r for r in results}
        for key, group in waiting.items():
            result = by_id.get(group[0].id)
            if result is None:
                continue
            if result.status is not GeocodeStatus.ERROR:
                self.memo[(stage.name, key)] = result
            for request in group:
                answers[request.id] = result.with_id(request.id)

    def close(self) -> None:
        for stage in self.stages:
            stage.close()


def _final(
    requests: Sequence[GeocodeRequest], combined: dict[str, GeocodeResult],
    pending: list[GeocodeRequest], partial: Iterable[GeocodeResult], last: bool,
) -> list[GeocodeResult]:
    """Results that no later stage could change: matched earlier, or answered
    by the failing stage and either matched or it is the last stage."""
    pending_ids = {r.id for r in pending}
    done = {rid: res for rid, res in combined.items() if rid not in pending_ids}
    for result in partial:
        if result.status is GeocodeStatus.MATCHED or last:
            done[result.id] = better(combined.get(result.id), result)
    return [done[r.id] for r in requests if r.id in done]
