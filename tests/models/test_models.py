"""Models: every registered model against the `ModelContract` (tests/contract.py), and the model
pieces (KG preprocessing, weights, masked attention, dropout, objective, optimiser)."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from jnskr.config import JNSKRConfig
from jnskr.data.dataset import Interactions, KnowledgeGraph
from jnskr.data.kg import build_item_kg, cap_neighbors
from jnskr.losses import nonsampling_cf_loss_bruteforce, nonsampling_kg_loss_bruteforce
from jnskr.models import MODELS
from jnskr.models.jnskr import JNSKR
from jnskr.models.jnskr.objective import JNSKRObjective
from jnskr.ops import csr_gather, segment_softmax
from jnskr.training.dropout import keyed_dropout, keyed_uniform
from jnskr.training.trainer import make_optimizer
from jnskr.training.weights import cf_negative_weights, kg_negative_weights

from contract import ModelContract

# ----------------------------------------------------------------------
# Every registered model against the `ModelContract` (tests/contract.py).

class TestJNSKR(ModelContract):
    model_name = "jnskr"
    explains = True


class TestJNSKRSampled(ModelContract):
    model_name = "jnskr_sampled"
    explains = True
    min_recall_gain = 0.05


class TestENMF(ModelContract):
    model_name = "enmf"


class TestBPR(ModelContract):
    model_name = "bpr"
    folds_in = False
    epochs = 30
    min_recall_gain = 0.0


class TestPopularity(ModelContract):
    model_name = "popularity"
    trainable = False
    folds_in = False
    has_vectors = False


def contract_classes() -> dict[str, str]:
    """{model name: test file} of every `ModelContract` subclass in the test files (read, not
    imported: a model's own test file holds its contract class)."""
    out = {}
    for path in sorted(Path(__file__).resolve().parents[1].rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "ModelContract" for b in node.bases):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "model_name"
                            and isinstance(stmt.value, ast.Constant)):
                        out[stmt.value.value] = path.name
    return out


def test_every_registered_model_has_a_contract_test():
    found = contract_classes()
    assert set(MODELS) <= set(found), set(MODELS) - set(found)
    assert found["lightgcn"] == "test_lightgcn.py" and found["jnskr"] == "test_models.py"


# ----------------------------------------------------------------------
# Model pieces: KG preprocessing, weights, masked attention, dropout, objective, optimiser.

# ---------------------------------------------------------------- KG preprocessing (docs/spec.md §11.7)
def _toy_kg():
    # items 0..2; entities 3..5.  (1, r0, 0) is an item->item fact, (4, r1, 2) points at an item.
    h = np.array([0, 0, 1, 4, 3, 0])
    r = np.array([1, 0, 0, 1, 2, 1])
    t = np.array([3, 5, 0, 2, 5, 3])  # last triple duplicates the first
    return KnowledgeGraph(h, r, t, n_entities=6, n_relations=3, relation_names=np.array(["a", "b", "c"]))


def test_item_kg_reversal_dedup_heads_and_first_appearance_ids():
    kg = build_item_kg(_toy_kg(), n_items=3)
    # originals (deduplicated, item heads): (0,1,3) (0,0,5) (1,0,0); then reversed with an item
    # head: (0,0,1) from (1,0,0), (2,1,4) from (4,1,2).  (3,...)/(5,...) heads are dropped.
    heads = kg.heads().tolist()
    assert heads == [0, 0, 0, 1, 2]
    # relations by first appearance: raw 1 -> 0, raw 0 -> 1
    assert kg.relation_source.tolist() == [1, 0]
    assert kg.relation_names == ["b", "a"]
    # tails by first appearance among kept triples in order: 3, 5, 0, 1, 4
    assert kg.tail_entity.tolist() == [3, 5, 0, 1, 4]
    # per-item lists keep file order (originals before reversed)
    pairs = list(zip(kg.relations.tolist(), kg.tail_entity[kg.tails].tolist()))
    assert pairs == [(0, 3), (1, 5), (1, 1), (1, 0), (0, 4)]


def test_item_kg_separate_inverse_and_trained_items():
    kg = build_item_kg(_toy_kg(), n_items=3, inverse_relations="separate")
    names = kg.relation_names
    assert "a^-1" in names and "b^-1" in names
    kg2 = build_item_kg(_toy_kg(), n_items=3, train_item_counts=np.array([1, 0, 1]), kg_heads="trained_items")
    assert kg2.degrees().tolist() == [3, 0, 1]


def test_cap_neighbors_keeps_first_k():
    kg = build_item_kg(_toy_kg(), n_items=3)
    ip, rel, tail = cap_neighbors(kg, 2)
    assert np.diff(ip).tolist() == [2, 1, 1]
    assert tail.tolist() == kg.tails[[0, 1, 3, 4]].tolist()


# ------------------------------------------------------------------------- weights (docs/spec.md §11.3)
def test_cf_weights_sum_to_c0_and_follow_popularity():
    counts = np.array([4, 1, 0, 9])
    c = cf_negative_weights(counts, c0=300, beta=0.5)
    assert c.sum() == pytest.approx(300)
    assert c[2] == 0
    assert c[3] / c[0] == pytest.approx(1.5)  # sqrt(9/4)


def test_kg_weights_deg_and_legacy_on_a_toy():
    deg = np.array([2, 8, 0, 1])
    counts = np.array([1, 4, 3, 9])
    w = kg_negative_weights(deg, counts, c1=600, beta=0.5, mode="deg")
    assert w.sum() == pytest.approx(600)
    g = deg / deg.sum()
    f = counts / counts.sum()
    denom = np.sqrt(g).sum()
    legacy = kg_negative_weights(deg, counts, c1=600, beta=0.5, mode="legacy")
    expected = 600 * np.sqrt(f) / denom
    expected[2] = 0.0  # a head without facts has no KG term
    np.testing.assert_allclose(legacy, expected)


# --------------------------------------------------------------------- attention (docs/spec.md §11.4)
def test_segment_softmax_masks_rows_and_handles_empty_and_huge_scores():
    scores = torch.tensor([1.0, 2.0, 1000.0, 1001.0, 3.0])
    seg = torch.tensor([0, 0, 2, 2, 3])
    a = segment_softmax(scores, seg, 4)
    assert torch.isfinite(a).all()
    sums = torch.zeros(4).index_add(0, seg, a)
    assert torch.allclose(sums[[0, 2, 3]], torch.ones(3))
    assert sums[1] == 0  # segment 1 has no entries
    assert torch.allclose(a[2:4], torch.softmax(torch.tensor([1000.0, 1001.0]), 0))


def _tiny_model(seed=0, **kw):
    kg = build_item_kg(_toy_kg(), n_items=3)
    cfg = JNSKRConfig(embed_dim=8, **kw)
    return JNSKR(n_users=4, n_items=3, item_kg=kg, cfg=cfg, seed=seed), kg


def test_messages_are_attention_weighted_tails_and_zero_without_facts():
    kg = build_item_kg(KnowledgeGraph(np.array([0, 0]), np.array([0, 1]), np.array([3, 4]), 5, 2), n_items=3)
    m = JNSKR(2, 3, kg, JNSKRConfig(embed_dim=4), seed=1)
    items = torch.arange(3)
    seg, pos = csr_gather(m.nb_indptr, items)
    tail = m.nb_tail[pos]
    alpha = m.attention_weights(seg, m.tails(tail), m.rel_emb[m.nb_rel[pos]], 3)
    assert seg.tolist() == [0, 0]
    assert torch.allclose(alpha.sum(), torch.tensor(1.0))
    msg = m.messages(items)
    expected0 = alpha[0] * m.tails(tail[:1])[0] + alpha[1] * m.tails(tail[1:])[0]
    assert torch.allclose(msg[0], expected0)
    assert torch.all(msg[1:] == 0) and torch.isfinite(msg).all()


def test_paper_form_attention_runs():
    m, _ = _tiny_model(attention="paper")
    assert torch.isfinite(m.item_vectors()).all()


def test_csr_gather():
    indptr = torch.tensor([0, 2, 2, 5])
    seg, pos = csr_gather(indptr, torch.tensor([2, 0, 1]))
    assert seg.tolist() == [0, 0, 0, 1, 1]
    assert pos.tolist() == [2, 3, 4, 0, 1]


# ------------------------------------------------------------------------- dropout (docs/spec.md §11.5)
def test_keyed_dropout_depends_only_on_key_and_id():
    ids = torch.tensor([5, 9, 2])
    u1 = keyed_uniform(1, 3, ids, 16, stream=0)
    u2 = keyed_uniform(1, 3, ids[[2, 0, 1]], 16, stream=0)
    assert torch.equal(u1[[2, 0, 1]], u2)
    assert not torch.equal(u1, keyed_uniform(1, 4, ids, 16, stream=0))
    assert not torch.equal(u1, keyed_uniform(1, 3, ids, 16, stream=1))
    big = keyed_uniform(7, 0, torch.arange(20000), 64, stream=0)
    assert 0.49 < float(big.mean()) < 0.51 and float(big.min()) >= 0 and float(big.max()) < 1
    x = torch.ones(20000, 64)
    y = keyed_dropout(x, 0.3, 7, 0, torch.arange(20000), stream=0)
    assert abs(float((y == 0).float().mean()) - 0.3) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))


def test_keyed_uniform_bits_match_a_plain_uint32_murmur3():
    """The masks are pinned: the vectorised hash equals scalar uint32 arithmetic bit for bit."""

    def fmix(x):
        x ^= x >> 16
        x = (x * 0x85EBCA6B) & 0xFFFFFFFF
        x ^= x >> 13
        x = (x * 0xC2B2AE35) & 0xFFFFFFFF
        return x ^ (x >> 16)

    ids = torch.tensor([0, 1, 7, 1598, 70_678, 33_554_431, 2**31 + 5])
    for seed, epoch, stream in [(2019, 0, 0), (1, 57, 2), (123456, 3, 1)]:
        k1 = fmix(fmix(seed) ^ fmix((epoch * 0x9E3779B1 + 1) & 0xFFFFFFFF))
        k2 = fmix(k1 ^ fmix((stream * 0x7F4A7C15 + 7) & 0xFFFFFFFF))
        want = [[fmix(fmix(((i * 8 + c) & 0xFFFFFFFF) ^ k1) ^ k2) / 2**32 for c in range(8)] for i in ids.tolist()]
        got = keyed_uniform(seed, epoch, ids, 8, stream, dtype=torch.float64)
        assert torch.equal(got, torch.tensor(want, dtype=torch.float64))


def _objective(model, kg, cfg_kw=None):
    train = Interactions.from_pairs(np.array([0, 0, 1, 2, 3, 3]), np.array([0, 1, 1, 2, 0, 2]), 4, 3)
    cfg = model.cfg
    return JNSKRObjective(model, train, kg, cfg, seed=11), train


def test_dropout_off_in_eval_and_same_masks_feed_both_terms():
    m, kg = _tiny_model(keep_prob=(0.5, 0.5))
    obj, train = _objective(m, kg)
    items = torch.arange(3)
    m.eval()
    q, e = obj.item_inputs(items, epoch=0)
    assert torch.allclose(q, m.item_vectors(items))
    assert torch.equal(e, m.item_emb[items])
    m.train()
    q1, e1 = obj.item_inputs(items, epoch=0)
    q2, e2 = obj.item_inputs(items, epoch=0)
    assert torch.equal(q1, q2) and torch.equal(e1, e2)  # deterministic per (seed, epoch, item)
    assert not torch.allclose(q1, m.item_vectors(items))


@pytest.mark.parametrize("pad", [False, True])
def test_objective_equals_bruteforce_with_the_dropped_inputs(pad):
    """In train mode the same q̃ feeds both CF terms and the same ẽ both KG terms (docs/spec.md §3.2-3.3)."""
    torch.manual_seed(0)
    m, kg = _tiny_model(keep_prob=(0.8, 0.7), include_pad_rows_in_gram=pad, lambda_emb=0.0, lambda_att=0.0)
    m.double()
    obj, train = _objective(m, kg)
    obj.c_neg = obj.c_neg.double()
    obj.w_neg = obj.w_neg.double()
    m.train()
    items = torch.tensor([2, 0])
    loss, parts = obj(items, epoch=3)
    q, e = obj.item_inputs(items, epoch=3)
    by_item = train.transpose()
    pu, pi = [], []
    for b, it in enumerate(items.tolist()):
        for u in by_item.row(it):
            pu.append(u)
            pi.append(b)
    ref_cf = nonsampling_cf_loss_bruteforce(m.user_emb, q, m.h, torch.tensor(pu), torch.tensor(pi), 1.0,
                                            obj.c_neg[items]) - len(pu)
    ph, pr, pt = [], [], []
    for b, it in enumerate(items.tolist()):
        for k in range(kg.indptr[it], kg.indptr[it + 1]):
            ph.append(b)
            pr.append(int(kg.relations[k]))
            pt.append(int(kg.tails[k]))
    ref_kg = nonsampling_kg_loss_bruteforce(e, m.rel_emb, m.tail_table_for_gram(), torch.tensor(ph),
                                            torch.tensor(pr), torch.tensor(pt), 1.0, obj.w_neg[items]) - len(ph)
    assert float(parts["cf"]) == pytest.approx(float(ref_cf.detach()), rel=1e-9)
    assert float(parts["kg"]) == pytest.approx(float(ref_kg.detach()), rel=1e-9)
    assert float(loss) == pytest.approx(float((ref_cf + 0.01 * ref_kg).detach()), rel=1e-9)
    # gradients too: the fused ops' hand-written backward passes against autograd on the definition
    params = [p for p in m.parameters() if p.requires_grad]
    got = torch.autograd.grad(loss, params, allow_unused=True)
    want = torch.autograd.grad(ref_cf + 0.01 * ref_kg, params, allow_unused=True)
    for p_, g_, w_ in zip(params, got, want):
        g_ = torch.zeros_like(p_) if g_ is None else g_
        w_ = torch.zeros_like(p_) if w_ is None else w_
        assert torch.allclose(g_, w_, rtol=1e-9, atol=1e-12)


def test_pad_rows_enter_gram_only_when_configured():
    m0, _ = _tiny_model()
    m1, _ = _tiny_model(include_pad_rows_in_gram=True)
    assert m1.user_emb.shape[0] == m0.user_emb.shape[0] + 1
    assert m1.tail_emb.shape[0] == m0.tail_emb.shape[0] + 1
    assert m1.rel_emb.shape[0] == m0.rel_emb.shape[0] + 1
    assert m1.score(torch.arange(4)).shape == (4, 3)


def test_tied_item_tail_embeddings_read_the_item_table():
    m, kg = _tiny_model(tie_item_tail_embeddings=True)
    item_tails = torch.nonzero(torch.from_numpy(kg.tail_entity < 3)).flatten()
    assert len(item_tails) > 0
    x = m.tails(item_tails)
    assert torch.equal(x, m.item_emb[torch.from_numpy(kg.tail_entity)[item_tails]])


# --------------------------------------------------------------------- optimiser (docs/spec.md §11.8)
def test_adagrad_step_matches_tf1_hand_computation():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = make_optimizer([p], "adagrad", lr=0.05, initial_accumulator=1e-8)
    g = torch.tensor([0.5, -0.1], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    acc = 1e-8 + g * g
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64) - 0.05 * g / acc.sqrt()
    assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-15)


def test_weight_decay_is_exactly_the_l2_gradient():
    """L2 enters as the optimiser's weight decay: one step equals a step on loss + L2."""
    m1, kg = _tiny_model(seed=3, lambda_emb=0.1, lambda_att=0.5)
    m2, _ = _tiny_model(seed=3, lambda_emb=0.1, lambda_att=0.5)
    o1, _ = _objective(m1, kg)
    o2, _ = _objective(m2, kg)
    items = torch.tensor([0, 2])
    opt1 = make_optimizer(o1.param_groups(), "adagrad", 0.05, 1e-8)
    loss, _ = o1(items, 0)
    loss.backward()
    opt1.step()
    opt2 = make_optimizer(m2.parameters(), "adagrad", 0.05, 1e-8)
    for g in opt2.param_groups:
        g["weight_decay"] = 0.0
    loss2, _ = o2(items, 0)
    (loss2 + o2.l2()).backward()
    opt2.step()
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-7), k


def test_gram_custom_backward_matches_autograd():
    from jnskr.losses import gram

    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 4, dtype=torch.float64)
    (a,) = torch.autograd.grad((gram(x) * g).sum(), x)
    (b,) = torch.autograd.grad(((x.T @ x) * g).sum(), x)
    assert torch.allclose(a, b, rtol=1e-12)


def test_shared_neighbour_rows_give_the_same_loss_and_gradients():
    """Gathering the neighbour rows once for attention and the KG loss (and the fused kernel
    that then applies) changes nothing: the same model with a cap that removes nothing takes
    the generic path."""
    items = torch.tensor([1, 0, 2])
    out = []
    for cap in (None, 1000):
        m, kg = _tiny_model(seed=5, max_neighbors=cap)
        obj, _ = _objective(m, kg)
        m.train()
        loss, _ = obj(items, 2)
        loss.backward()
        out.append((loss.detach(), [p.grad.clone() for p in m.parameters()]))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-6)
    for a, b in zip(out[0][1], out[1][1]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


def test_epoch_masks_equal_per_batch_keyed_dropout():
    from jnskr.training.dropout import EpochMasks

    x = torch.randn(40, 8, dtype=torch.float64)
    ids = torch.tensor([3, 17, 0, 99, 42, 5, 5, 77])[: len(x) // 5]
    masks = EpochMasks(seed=11, n_units=100, d=8)
    tiny = EpochMasks(seed=11, n_units=100, d=8, max_elements=10)  # falls back to per-batch hashing
    for epoch in (0, 1, 0):
        for stream, drop in ((0, 0.3), (2, 0.3), (1, 0.5)):
            want = keyed_dropout(x[: len(ids)], drop, 11, epoch, ids, stream)
            assert torch.equal(masks.apply(x[: len(ids)], drop, epoch, ids, stream), want)
            assert torch.equal(tiny.apply(x[: len(ids)], drop, epoch, ids, stream), want)
    assert masks.apply(x, 0.0, 0, torch.arange(40), 0) is x


@pytest.mark.parametrize("weighting", ["uniform", "popularity"])
def test_enmf_objective_equals_bruteforce_in_value_and_gradient(weighting):
    from jnskr.models.mf import ENMF, ENMFConfig
    from jnskr.models.mf.objective import CFObjective

    train = Interactions.from_pairs(np.array([0, 0, 1, 2, 3, 3, 4]), np.array([0, 1, 1, 2, 0, 2, 3]), 5, 4)
    cfg = ENMFConfig(embed_dim=6, keep_prob=0.6, negative_weight=0.3, weighting=weighting, init_std=0.3)
    m = ENMF(5, 4, cfg, seed=3).double()
    obj = CFObjective(m, train, cfg, seed=11)
    if obj.c_neg is not None:
        obj.c_neg = obj.c_neg.double()
    m.train()
    units = torch.tensor([3, 0, 2] if weighting == "uniform" else [2, 0])
    loss, _ = obj(units, epoch=4)
    by_unit = train if weighting == "uniform" else train.transpose()
    batch_tab, other_tab = (m.user_emb, m.item_emb) if weighting == "uniform" else (m.item_emb, m.user_emb)
    b = keyed_dropout(batch_tab[units], 0.4, 11, 4, units, stream=0)
    po, pb = [], []
    for r, u in enumerate(units.tolist()):
        for o in by_unit.row(u):
            po.append(int(o))
            pb.append(r)
    c_neg = torch.full((len(units),), 0.3, dtype=torch.float64) if weighting == "uniform" else obj.c_neg[units]
    ref = nonsampling_cf_loss_bruteforce(other_tab, b, m.h, torch.tensor(po), torch.tensor(pb), 1.0, c_neg) - len(po)
    assert float(loss) == pytest.approx(float(ref), rel=1e-9)
    params = list(m.parameters())
    for g_, w_ in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params)):
        assert torch.allclose(g_, w_, rtol=1e-9, atol=1e-12)
