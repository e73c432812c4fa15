"""Every config in conf/ composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import CONF_DIR, compose_config, compose_train
from hydra.utils import instantiate
from sklearn.base import is_classifier

from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.ensemble.stack import configured_learners
from fer_lightning.models.classifier import EmotionClassifier


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def base_overrides(tmp_path: Path) -> list[str]:
    return [f"paths.output_dir={tmp_path}", "data.csv_path=unused.csv"]


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_model_instantiates_with_every_optimizer(tmp_path: Path, model: str, optimizer: str) -> None:
    """Optimizer configs write into the model's node (keras_l2 is the net's own L2), so the two are crossed; the
    scheduler is not built until fit, and is crossed with neither (below)."""
    cfg = compose_train([*base_overrides(tmp_path), f"model={model}", f"optimizer={optimizer}"])
    module = instantiate(cfg.model)
    assert isinstance(module, EmotionClassifier)
    assert isinstance(module.make_optimizer(params=module.parameters()), torch.optim.Optimizer)


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_scheduler_instantiates(tmp_path: Path, scheduler: str) -> None:
    module = instantiate(compose_train([*base_overrides(tmp_path), f"scheduler={scheduler}"]).model)
    assert (module.make_scheduler is None) == (scheduler == "none")
    if module.make_scheduler is not None:
        schedule = module._scheduler(module.make_optimizer(params=module.parameters()), total_steps=10)
        assert isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)


@pytest.mark.parametrize("experiment", [None, *options("experiment")])
def test_whole_config_instantiates(tmp_path: Path, experiment: str | None) -> None:
    overrides = base_overrides(tmp_path) + ([f"experiment={experiment}"] if experiment else [])
    cfg = compose_train(overrides)
    assert isinstance(instantiate(cfg.data), FerDataModule)
    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
    loggers = [instantiate(node) for node in cfg.logger.values()]
    trainer = instantiate(cfg.trainer, precision="32-true", callbacks=callbacks, logger=loggers)
    assert isinstance(trainer, L.Trainer)


def test_seed_replication_is_the_study_recipe(tmp_path: Path) -> None:
    cfg = compose_train([*base_overrides(tmp_path), "experiment=seed_replication"])
    assert cfg.model.scheduler._target_.endswith("ReduceLROnPlateau")
    assert (cfg.model.scheduler.factor, cfg.model.scheduler.patience) == (0.5, 3)
    assert cfg.model.optimizer.lr == 1e-3 and cfg.data.batch_size == 128
    assert cfg.data.train_transform is None and cfg.data.batch_augment is None and cfg.data.normalization == "scale"
    assert (cfg.callbacks.early_stopping.monitor, cfg.callbacks.early_stopping.patience) == ("val/loss", 10)
    assert cfg.trainer.max_epochs == 150


def test_random_erasing_is_set_as_the_readme_writes_it(tmp_path: Path) -> None:
    """``data.batch_augment.erase=0.5``, without Hydra's ``+``: the key is in the batched config, off."""
    assert instantiate(compose_train(base_overrides(tmp_path)).data.batch_augment).erase == 0.0
    cfg = compose_train([*base_overrides(tmp_path), "data.batch_augment.erase=0.5"])
    assert instantiate(cfg.data.batch_augment).erase == 0.5


def test_csv_path_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER2013_CSV", "/data/fer.csv.gz")
    cfg = compose_train([f"paths.output_dir={tmp_path}"])
    assert cfg.data.csv_path == "/data/fer.csv.gz"
    monkeypatch.delenv("FER2013_CSV")
    assert compose_train([f"paths.output_dir={tmp_path}"]).data.csv_path is None


def test_every_meta_learner_is_a_classifier_with_a_valid_grid(tmp_path: Path) -> None:
    cfg = compose_config("stack", [f"paths.output_dir={tmp_path}", "runs=[a,b]"])
    learners = configured_learners(cfg)
    assert learners[0].name == "decision_tree"  # the chosen meta-learner comes first
    assert {learner.name for learner in learners} == set(options("meta"))
    for learner in learners:
        assert is_classifier(learner.estimator), learner.name
        learner.estimator.set_params(**{key: values[0] for key, values in learner.grid.items()})


def test_the_study_meta_learner_is_compared_whichever_is_chosen(tmp_path: Path) -> None:
    cfg = compose_config("stack", [f"paths.output_dir={tmp_path}", "runs=[a,b]", "meta=soft_vote"])
    names = [learner.name for learner in configured_learners(cfg)]
    assert names[0] == "soft_vote" and sorted(names) == sorted(options("meta"))  # each once, decision_tree among them


@pytest.mark.parametrize("model", ["relu", "leaky"])
def test_best_recipe_keeps_the_study_layers_and_lowers_conv_dropout(tmp_path: Path, model: str) -> None:
    cfg = compose_train([*base_overrides(tmp_path), "experiment=best", f"model={model}"])
    net = instantiate(cfg.model.net)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 256, 128, 256]
    assert [m.p for m in net.features if isinstance(m, torch.nn.Dropout)] == [0.1] * 4
    assert cfg.callbacks.early_stopping is None  # one-cycle must reach its end
    assert list(cfg.tta) == ["none", "hflip", "shifts", "hflip_shifts"]


@pytest.mark.parametrize(("experiment", "scheduler"), [("sota", "ReduceLROnPlateau"), ("sota_short", "OneCycleLR")])
def test_vgg_recipes_build_their_scheduler(tmp_path: Path, experiment: str, scheduler: str) -> None:
    """sota_short swaps sota's plateau schedule for one-cycle; none of the plateau's keys may leak into it."""
    cfg = compose_train([*base_overrides(tmp_path), f"experiment={experiment}"])
    module = instantiate(cfg.model)
    optimizer = module.make_optimizer(params=module.parameters())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"]
    extra = {"total_steps": 100} if scheduler == "OneCycleLR" else {}
    assert type(module.make_scheduler(optimizer=optimizer, **extra)).__name__ == scheduler
    assert cfg.data.batch_augment.erase == 0.5 and "hflip_shifts" in cfg.tta
