"""Protocol-dependent defaults are resolved into the config itself (issue 18 §2): the saved
config says what the run used, no method shadows a field, and a resolved config used as a base
for another model or protocol resolves those keys anew."""

import pytest

from jnskr.config import TrainConfig, build_config, config_class, config_to_dict, validate_config

RESOLVED = ("solver", "refit", "eval_every", "patience", "drop_last", "select_metric")


def test_the_defaults_are_resolved_into_train():
    t = build_config("default").train
    assert (t.solver, t.refit, t.eval_every, t.patience, t.drop_last, t.select_metric) == \
        ("als", True, 2, 3, False, "recall@20")
    t = build_config("default", overrides={"train.protocol": "paper"}).train
    assert (t.solver, t.refit, t.eval_every, t.patience, t.drop_last, t.select_metric) == \
        ("adagrad", False, 10, 5, True, "recall@10")
    t = build_config("default", overrides={"model": "lightgcn"}).train
    assert (t.solver, t.eval_every, t.patience) == ("adagrad", 5, 5)


def test_given_values_are_kept():
    t = build_config("default", overrides={"train.eval_every": 7, "train.solver": "adagrad"}).train
    assert (t.solver, t.eval_every, t.patience) == ("adagrad", 7, 5)


def test_the_saved_form_holds_the_resolved_values_and_round_trips():
    cfg = build_config("default")
    saved = config_to_dict(cfg)
    assert all(saved["train"][k] is not None for k in RESOLVED)
    assert validate_config(saved) == cfg


def test_as_given_leaves_them_to_resolve_again():
    base = config_to_dict(build_config("default"), as_given=True)
    assert all(base["train"][k] is None for k in RESOLVED)
    assert validate_config({**base, "model": "bpr"}).train.solver == "adagrad"


def test_a_resolved_config_overridden_to_another_model_resolves_anew():
    from jnskr import Recommender

    rec = Recommender(build_config("default"), model="bpr")  # the jnskr default resolved als
    assert rec.config.train.solver == "adagrad" and rec.config.train.patience == 5


@pytest.mark.parametrize("name", RESOLVED)
def test_no_method_shadows_a_train_field(name):
    assert name in TrainConfig.model_fields
    assert not callable(getattr(config_class(), name, None))


def test_a_key_set_after_validation_moves_the_defaults_that_depend_on_it():
    """A notebook sets cfg.train.solver after building the config: the run uses adagrad's eval_every
    and patience (was: als's, resolved before the assignment), and keeps keys assigned since."""
    from jnskr.config import refresh_defaults

    cfg = build_config("default")
    cfg.train.solver = "adagrad"
    cfg.train.patience = 9
    t = refresh_defaults(cfg).train
    assert (t.solver, t.eval_every, t.patience, t.refit) == ("adagrad", 5, 9, True)
    assert refresh_defaults(build_config("default")) == build_config("default")
    fresh = refresh_defaults(cfg)
    assert config_to_dict(fresh, as_given=True)["train"]["eval_every"] is None  # still a default


def test_pipeline_run_uses_the_refreshed_defaults(tmp_path):
    from conftest import synthetic_dataset, tiny_config
    from jnskr import Recommender

    cfg = tiny_config("jnskr", 3)
    cfg.train.solver = "adagrad"
    rec = Recommender(cfg).fit(synthetic_dataset())
    assert rec.config.train.solver == "adagrad" and rec.config.train.eval_every == 5
