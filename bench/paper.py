"""Published reference numbers, as data (no computation here).

* `PAPER_TABLE2`: Table 2 of the JNSKR paper (Chen et al., SIGIR 2020), transcribed from the
  project spec (docs/JNSKR.md section 7).  NDCG is the KGAT-legacy variant (IDCG over the hits
  found in the top 100, spec section 6), so compare it only with jnskr's ``ndcg_kgat@K`` under
  ``protocol: paper``.  The paper marks JNSKR's improvements with ** (p < 0.01).
* `PORT_RECALL`: recall reported by the third-party PyTorch port liulu1998/JNSKR-pytorch (not
  authoritative; its NDCG is not comparable, so it is left out).
* `RECBOLE_EARLIER_ML100K`: RecBole 1.2.1 figures on ml100k-kgat measured earlier on this machine
  (shared/data/README.md, last section: 2 CPU cores, RecBole defaults, 300 s budget per model;
  CKE, KGCN and KGAT stopped by the budget).  NDCG is the standard variant.
"""

from __future__ import annotations

METRICS = ("recall@10", "recall@20", "recall@40", "ndcg_kgat@10", "ndcg_kgat@20", "ndcg_kgat@40")

PAPER_MODELS = ("NCF", "ENMF", "NFM", "CKE", "CFKG", "RippleNet", "KGAT", "JNSKR")


def _rows(table: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    return {model: dict(zip(METRICS, values, strict=True)) for model, values in table.items()}


#            R@10    R@20    R@40    N@10    N@20    N@40   (N = legacy NDCG)
PAPER_TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "amazon-book": _rows({
        "NCF":       (0.0874, 0.1319, 0.1924, 0.0724, 0.0895, 0.1111),
        "ENMF":      (0.1002, 0.1472, 0.2085, 0.0797, 0.0998, 0.1215),
        "NFM":       (0.0891, 0.1366, 0.1975, 0.0723, 0.0913, 0.1152),
        "CKE":       (0.0875, 0.1343, 0.1946, 0.0705, 0.0885, 0.1114),
        "CFKG":      (0.0769, 0.1142, 0.1901, 0.0603, 0.0770, 0.0985),
        "RippleNet": (0.0883, 0.1336, 0.2008, 0.0747, 0.0910, 0.1164),
        "KGAT":      (0.1017, 0.1489, 0.2094, 0.0814, 0.1006, 0.1225),
        "JNSKR":     (0.1056, 0.1558, 0.2178, 0.0842, 0.1068, 0.1271),
    }),
    "yelp2018": _rows({
        "NCF":       (0.0389, 0.0653, 0.1060, 0.0603, 0.0802, 0.1087),
        "ENMF":      (0.0403, 0.0711, 0.1109, 0.0611, 0.0877, 0.1097),
        "NFM":       (0.0396, 0.0660, 0.1082, 0.0603, 0.0810, 0.1094),
        "CKE":       (0.0399, 0.0657, 0.1074, 0.0608, 0.0805, 0.1091),
        "CFKG":      (0.0288, 0.0522, 0.0904, 0.0450, 0.0644, 0.0897),
        "RippleNet": (0.0402, 0.0664, 0.1088, 0.0613, 0.0822, 0.1097),
        "KGAT":      (0.0418, 0.0712, 0.1128, 0.0630, 0.0867, 0.1129),
        "JNSKR":     (0.0456, 0.0749, 0.1209, 0.0687, 0.0917, 0.1211),
    }),
}

# The paper's RI column (mean over the six metrics of JNSKR / baseline - 1), for cross-checking
# the transcription (tests recompute it).
PAPER_RI: dict[str, dict[str, float]] = {
    "amazon-book": {"NCF": 0.1703, "ENMF": 0.0549, "NFM": 0.1444, "CKE": 0.1714, "CFKG": 0.3262,
                    "RippleNet": 0.1399, "KGAT": 0.0431},
    "yelp2018": {"NCF": 0.1428, "ENMF": 0.0915, "NFM": 0.1303, "CKE": 0.1313, "CFKG": 0.4427,
                 "RippleNet": 0.1190, "KGAT": 0.0726},
}

PORT_RECALL: dict[str, dict[str, float]] = {
    "amazon-book": {"recall@10": 0.1079, "recall@20": 0.1572, "recall@40": 0.2194},
    "yelp2018": {"recall@10": 0.0453, "recall@20": 0.0750, "recall@40": 0.1209},
}

RECBOLE_EARLIER_ML100K: dict[str, dict[str, float]] = {
    # model: seconds per epoch, test Recall@20, test NDCG@20 (standard)
    "BPR": {"seconds_per_epoch": 0.14, "recall@20": 0.3279, "ndcg@20": 0.3871},
    "ENMF": {"seconds_per_epoch": 0.25, "recall@20": 0.2693, "ndcg@20": 0.3221},
    "ENMF (lr 0.01)": {"seconds_per_epoch": 0.24, "recall@20": 0.3310, "ndcg@20": 0.3907},
    "NeuMF": {"seconds_per_epoch": 0.86, "recall@20": 0.3254, "ndcg@20": 0.3756},
    "NFM": {"seconds_per_epoch": 0.47, "recall@20": 0.2805, "ndcg@20": 0.3233},
    "LightGCN": {"seconds_per_epoch": 0.98, "recall@20": 0.3221, "ndcg@20": 0.3874},
    "CFKG": {"seconds_per_epoch": 0.80, "recall@20": 0.3235, "ndcg@20": 0.3850},
    "CKE": {"seconds_per_epoch": 4.25, "recall@20": 0.3293, "ndcg@20": 0.3922},
    "KGCN": {"seconds_per_epoch": 1.31, "recall@20": 0.3213, "ndcg@20": 0.3752},
    "KGAT": {"seconds_per_epoch": 8.04, "recall@20": 0.2730, "ndcg@20": 0.3297},
}
RECBOLE_EARLIER_SOURCE = ("shared/data/README.md, section ml100k-kgat: RecBole 1.2.1, 2 CPU cores, RecBole "
                          "defaults, 300 s budget per model (CKE, KGCN, KGAT stopped by the budget)")
