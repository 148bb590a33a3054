"""The filtered ranking evaluator equals a brute-force ranker written with Python loops."""

import pytest
import torch

from jnskr.kg.evaluate import KnownTriples, evaluate_ranking, filtered_ranks, rank_metrics
from jnskr.kg.losses import score
from jnskr.kg.models import MODELS, KGModel


def _model(name, reciprocal, seed, E=9, R=3, d=3, integer=True):
    gen = torch.Generator().manual_seed(seed)
    spec = MODELS[name]
    shapes = spec.table_shapes(E, 2 * R if reciprocal else R, d)
    if integer:  # small integers: many exact ties
        tables = {k: torch.randint(-1, 2, s, generator=gen).to(torch.float32) for k, s in shapes.items()}
    else:
        tables = {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}
    return KGModel(spec, tables, [f"e{i}" for i in range(E)], [f"r{i}" for i in range(R)], reciprocal)


def _triples(seed, n, E=9, R=3):
    gen = torch.Generator().manual_seed(seed)
    key = torch.randperm(E * R * E, generator=gen)[:n]
    return torch.stack([key // (R * E), (key // E) % R, key % E], dim=1)


def brute_force(model: KGModel, test, known_list, seen):
    """Realistic filtered ranks by explicit loops over every candidate entity."""
    H, Rt, T = model.spec.role_tables(model.tables)
    R = model.n_relations
    known = {tuple(x) for x in known_list.tolist()}

    def g(h, r, t):
        return float(score(model.spec.form, H[h:h + 1], Rt[r:r + 1], T[t:t + 1])[0])

    tail_ranks, head_ranks = [], []
    for h, r, t in test.tolist():
        st = g(h, r, t)
        gt = eq = 0
        for e in range(model.n_entities):
            if e == t or (h, r, e) in known:
                continue
            s = g(h, r, e)
            gt += s > st
            eq += s == st
        tail_ranks.append(1 + gt + eq / 2)
        def head_score(e):
            return g(t, r + R, e) if model.reciprocal else g(e, r, t)
        st = head_score(h)
        gt = eq = 0
        for e in range(model.n_entities):
            if e == h or (e, r, t) in known:
                continue
            s = head_score(e)
            gt += s > st
            eq += s == st
        head_ranks.append(1 + gt + eq / 2)
    out = {}
    for rule in ("kept", "dropped"):
        keep = [rule == "kept" or (seen[h] and seen[t]) for h, _, t in test.tolist()]
        ranks = [x for x, k in zip(tail_ranks, keep) if k] + [x for x, k in zip(head_ranks, keep) if k]
        out[rule] = {"mrr": sum(1 / x for x in ranks) / len(ranks),
                     **{f"hits@{k}": sum(x <= k for x in ranks) / len(ranks) for k in (1, 3, 10)},
                     "triples": sum(keep)}
    return out


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("reciprocal", [False, True])
@pytest.mark.parametrize("integer", [True, False])
def test_evaluator_equals_brute_force_ranker(name, reciprocal, integer):
    model = _model(name, reciprocal, seed=3, integer=integer)
    allt = _triples(5, 60)
    train, test = allt[:45], allt[45:]
    seen = torch.zeros(9, dtype=torch.bool)
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    seen[4] = False  # make some test triples "unseen" for the dropped rule
    known = KnownTriples(allt, 9, 3)
    got = evaluate_ranking(model.score_tails, model.score_heads, test, known, seen, 9, memory_mb=1e-4)
    ref = brute_force(model, test, allt, seen.tolist())
    for rule in ("kept", "dropped"):
        assert got[rule]["triples"] == ref[rule]["triples"]
        for key in ("mrr", "hits@1", "hits@3", "hits@10"):
            assert got[rule][key] == pytest.approx(ref[rule][key], abs=1e-12), (rule, key)
    assert got["kept"]["triples"] > got["dropped"]["triples"] > 0


def test_chunking_does_not_change_ranks():
    model = _model("complex", True, seed=1, integer=False)
    allt = _triples(2, 80)
    known = KnownTriples(allt, 9, 3)
    h, r, t = allt[:, 0], allt[:, 1], allt[:, 2]
    a = filtered_ranks(model.score_tails, h, r, t, known.tails, 9, memory_mb=1e-4)
    b = filtered_ranks(model.score_tails, h, r, t, known.tails, 9, memory_mb=512)
    assert torch.equal(a, b)


def test_rank_metrics_by_hand_and_realistic_ties():
    ranks = torch.tensor([1.0, 2.5, 4.0, 11.0], dtype=torch.float64)
    m = rank_metrics(ranks)
    assert m["mrr"] == pytest.approx((1 + 1 / 2.5 + 1 / 4 + 1 / 11) / 4)
    assert (m["hits@1"], m["hits@3"], m["hits@10"]) == (0.25, 0.5, 0.75)
    # all scores equal: the target is tied with the n - 1 unfiltered others -> rank 1 + (n - 1)/2
    const = KGModel(MODELS["distmult"], {"entity": torch.ones(5, 2), "relation": torch.ones(2, 2)},
                    list("abcde"), ["r"], reciprocal=True)
    known = KnownTriples(torch.tensor([[0, 0, 1]]), 5, 1)
    ranks = filtered_ranks(const.score_tails, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]), known.tails, 5)
    assert float(ranks[0]) == 3.0
