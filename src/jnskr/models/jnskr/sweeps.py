"""Exact blocks of JNSKR's joint objective (`train.solver: als`; docs/solver.md).

Users, h and the item base vectors e_v (CF and KG terms together, the message m_v held fixed) are
solved in closed form; the relation and tail vectors and the attention MLP are not quadratic (they
feed the attention), so the trainer then runs one pass of its optimiser over item batches on those
parameters only.  F is the whole-data CF loss (`jnskr.models.mf.problem`) times κ plus μ times the
KG loss, each with its dropout in expectation, plus the L2 terms in the units of
`jnskr.models.mf.sweeps`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr import stop
from jnskr.losses.gram import gram, weighted_gram
from jnskr.models.mf.problem import CFProblem
from jnskr.models.mf.sweeps import batches_per_epoch, dropout_odds
from jnskr.training.blocks import Term, block_method, solve_block, term_sums
from jnskr.training.weights import cf_negative_weights, kg_negative_weights


class JNSKRSweeps:
    """Exact blocks of JNSKR's joint objective (users, h, item bases); see the module docstring."""

    def __init__(self, model, train, item_kg, cfg, batch_size: int, block_solver: str = "cholesky",
                 cg_steps: int = 3):
        if cfg.tie_item_tail_embeddings or cfg.include_pad_rows_in_gram:
            from jnskr.errors import ConfigError

            raise ConfigError("train.solver: als needs jnskr.tie_item_tail_embeddings: false and "
                              "jnskr.include_pad_rows_in_gram: false (the item bases are then an exact block)")
        self.model, self.cfg = model, cfg
        self.first_order = model.has_kg  # without KG facts every block is exact (no attention, no tails)
        dev = model.device
        n_b = batches_per_epoch(train.n_items, batch_size)
        self.lam = cfg.lambda_emb * n_b
        self.lam_att = cfg.lambda_att * n_b
        counts = train.item_counts()
        self.problem = CFProblem(train, cfg.c_pos, cf_negative_weights(counts, cfg.c0, cfg.beta), dev, cfg.alpha,
                                 method=block_method(block_solver, cfg.embed_dim), steps=cg_steps)
        self.learn_h, self.reg = cfg.h == "learned", float(cfg.reg)
        r_user, r_item = self.problem.ridges(cfg.reg, cfg.reg_exponent)
        # per-row ridges in F's units: λ/2 + reg·s_i (users and item bases); the user block is solved
        # on F/κ, so its ridge is divided by κ
        self.ridge_user, self.ridge_item = r_user + self.lam / 2, r_item + self.lam / 2
        self.rho_e, self.rho_k = dropout_odds(cfg.keep_prob[0]), dropout_odds(cfg.keep_prob[1])
        self.has_kg = item_kg is not None and item_kg.n_facts > 0 and cfg.mu > 0
        if self.has_kg:
            t = lambda a: torch.as_tensor(a, dtype=torch.long, device=dev)  # noqa: E731
            self.kg_ptr, self.kg_rel, self.kg_tail = t(item_kg.indptr), t(item_kg.relations), t(item_kg.tails)
            w = kg_negative_weights(item_kg.degrees(), counts, cfg.c1, cfg.beta, cfg.kg_neg_weight)
            self.w_neg = torch.as_tensor(w, dtype=torch.float64, device=dev)
            self.fact_head = torch.repeat_interleave(torch.arange(train.n_items, device=dev),
                                                     self.kg_ptr[1:] - self.kg_ptr[:-1])
            self.w_fact = cfg.w_pos - self.w_neg.index_select(0, self.fact_head)

    def exact_params(self) -> list[Tensor]:
        m = self.model
        return [m.user_emb, m.item_emb] + ([m.h] if self.learn_h else [])

    def param_groups(self) -> list[dict]:
        """The first-order part: relation and tail tables (L2 as weight decay) and the attention MLP."""
        m = self.model
        if not self.first_order:
            return []
        return [{"params": [m.tail_emb, m.rel_emb], "weight_decay": self.cfg.lambda_emb},
                {"params": m.attention_params(), "weight_decay": self.cfg.lambda_att if self.has_kg else 0.0}]

    def _sigma(self, q: Tensor, e: Tensor) -> Tensor | None:
        if not (self.rho_e or self.rho_k):
            return None
        q, e = q.double(), e.double()
        return self.rho_e * e ** 2 + self.rho_k * (q - e) ** 2

    @torch.no_grad()
    def sweep(self, epoch: int) -> None:
        m, pr, cfg = self.model, self.problem, self.cfg
        q = m.item_vectors()
        msg = (q - m.item_emb).double()
        m.user_emb.copy_(pr.solve_users(q, m.h, self._sigma(q, m.item_emb), self.ridge_user / cfg.kappa, m.user_emb))
        stop.boundary()  # a prompt stop between blocks: the trainer discards the unfinished sweep
        if self.learn_h:
            m.h.copy_(pr.solve_h(m.user_emb, q, self._sigma(q, m.item_emb), self.reg / cfg.kappa))
        m.item_emb.copy_(self._solve_bases(msg))

    def _solve_bases(self, msg: Tensor) -> Tensor:
        m, pr, cfg = self.model, self.problem, self.cfg
        s_user = self.rho_e * m.h.double() ** 2 * m.user_emb.double() ** 2 if self.rho_e else None
        shared, terms, diag, rhs_cf, x = pr.item_system(m.user_emb, m.h, s_user, scale=cfg.kappa)
        # the message's part of the CF residual: κ A_v^CF m_v (without the dropout diagonal)
        G_x = shared[0][0] / cfg.kappa
        users = pr.i_idx
        seg = torch.repeat_interleave(torch.arange(pr.n_items, device=msg.device), pr.i_ptr[1:] - pr.i_ptr[:-1])
        # per-entry products in the tables' dtype (float32 halves the gather traffic); sums in float64
        dots = (x.index_select(0, users) * msg.to(x.dtype).index_select(0, seg)).sum(1).double()
        am = pr.c_neg.unsqueeze(1) * (msg @ G_x) + term_sums(Term(pr.i_ptr, users, x, pr.w_item), torch.arange(
            pr.n_items, device=msg.device), pr.w_item * dots)
        cf_offset = cfg.kappa * am
        kg_rhs = None
        if self.has_kg:
            z, xt = m.rel_emb[: m.n_relations].detach(), m.tails().detach()
            a = z.index_select(0, self.kg_rel) * xt.index_select(0, self.kg_tail)  # [facts, d], tables' dtype
            z, xt = z.double(), xt.double()
            shared = shared + [(cfg.mu * (gram(z) * gram(xt)), self.w_neg)]
            facts = Term(self.kg_ptr, torch.arange(len(a), device=a.device), a, cfg.mu * self.w_fact)
            terms = terms + [facts]
            if self.rho_k:
                kd = (z ** 2).sum(0) * (xt ** 2).sum(0)
                rows = torch.arange(pr.n_items, device=a.device)
                extra = cfg.mu * self.rho_k * (self.w_neg.unsqueeze(1) * kd + term_sums(
                    Term(self.kg_ptr, facts.idx, a ** 2, self.w_fact), rows, self.w_fact))
                diag = extra if diag is None else diag + extra
            ones = Term(self.kg_ptr, facts.idx, a, self.w_fact)
            kg_rhs = lambda rows: cfg.mu * cfg.w_pos * term_sums(ones, rows)  # noqa: E731

        def rhs(rows):
            out = rhs_cf(rows) - cf_offset.index_select(0, rows)
            return out + kg_rhs(rows) if kg_rhs is not None else out

        return solve_block(pr.n_items, shared, terms, diag, self.ridge_item, rhs, m.item_emb.dtype, m.item_emb,
                           pr.method, pr.steps)

    @torch.no_grad()
    def value(self) -> float:
        """F = κ F_CF + μ F_KG + λ/2 ‖tables‖² + λ_att/2 ‖attention‖² (expected dropout)."""
        m, cfg = self.model, self.cfg
        q = m.item_vectors()
        out = cfg.kappa * self.problem.value(m.users(), q, m.h, self._sigma(q, m.item_emb))
        if self.has_kg:
            out += cfg.mu * self._kg_value()
            out += self.lam_att / 2 * sum(float((p.double() ** 2).sum()) for p in m.attention_params())
        out += self.lam / 2 * sum(float((t.double() ** 2).sum()) for t in m.embedding_tables())
        if self.reg:  # the rows' ridge beyond λ/2 (users and item bases), and h's when learned
            out += float((self.ridge_user - self.lam / 2) @ (m.users().double() ** 2).sum(1))
            out += float((self.ridge_item - self.lam / 2) @ (m.item_emb.double() ** 2).sum(1))
            out += self.reg * float((m.h.double() ** 2).sum()) if self.learn_h else 0.0
            if m.has_kg:  # tails and relations (first-order blocks): the plain ridge
                out += self.reg * float((m.tails().double() ** 2).sum() + (m.rel_emb[: m.n_relations].double() ** 2).sum())
        return out

    def _kg_value(self) -> float:
        m, cfg = self.model, self.cfg
        e0, z0, x0 = m.item_emb, m.rel_emb[: m.n_relations], m.tails()
        # per-fact products in the tables' dtype, sums in float64
        ezx = e0.index_select(0, self.fact_head) * z0.index_select(0, self.kg_rel) * x0.index_select(0, self.kg_tail)
        g = ezx.sum(1).double()
        e, z, x = e0.double(), z0.double(), x0.double()
        out = (self.w_fact * g * g - 2 * cfg.w_pos * g).sum() + cfg.w_pos * len(g)
        out += (gram(z) * weighted_gram(e, self.w_neg) * gram(x)).sum()
        if self.rho_k:
            out += self.rho_k * ((self.w_neg.unsqueeze(1) * e ** 2).sum(0) * (z ** 2).sum(0) * (x ** 2).sum(0)).sum()
            out += self.rho_k * (self.w_fact * (ezx ** 2).sum(1).double()).sum()
        return float(out)


def kg_value_bruteforce(e: Tensor, z: Tensor, x: Tensor, item_kg, w_pos: float, w_neg: Tensor, rho_k: float) -> Tensor:
    """F_KG enumerated over every (item, relation, tail) triple (tests only).  -> scalar."""
    ghat = torch.einsum("bd,rd,td->brt", e, z, x)
    g = torch.zeros_like(ghat)
    heads = torch.as_tensor(item_kg.heads())
    g[heads, torch.as_tensor(item_kg.relations), torch.as_tensor(item_kg.tails)] = 1.0
    w = w_neg.view(-1, 1, 1).expand_as(ghat).clone()
    w[heads, torch.as_tensor(item_kg.relations), torch.as_tensor(item_kg.tails)] = w_pos
    var = rho_k * torch.einsum("bd,rd,td->brt", e * e, z * z, x * x)
    return (w * ((g - ghat) ** 2 + var)).sum()
