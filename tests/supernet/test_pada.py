"""PA&DA sampling (path and data importance sampling) on a tiny NB201 supernet: op probabilities follow
the measured op gradient norms, data probabilities the logit-gradient norms, seeded determinism,
checkpoint resume, typed config."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raynas.data.base import TRAIN, NormalizedImages, Splits
from raynas.errors import RecipeError
from raynas.space.nb201 import OPS, NB201Space
from raynas.space.splits import RestrictedSpace, SubSpace
from raynas.supernet import build_sampler, build_supernet
from raynas.supernet.sampling import PADA, UNIFORM, PadaRule, Step
from raynas.supernet.train import TrainConfig, logit_grad_norms, make_optimizer, train_step, train_supernet
from raynas.supernet.trainable import restore_checkpoint, write_checkpoint
from raynas.supernet.weights import to_numpy

N_TRAIN, BATCH, CLASSES = 48, 16, 4
CONFIG = TrainConfig(epochs=3, batch_size=BATCH, lr=0.05, device="cpu", seed=3)
PARAM_FREE = [i for i, op in enumerate(OPS) if op in ("none", "skip_connect", "avg_pool_3x3")]
CONVS = [i for i in range(len(OPS)) if i not in PARAM_FREE]
SPACE = NB201Space()


def tiny_splits(n: int = N_TRAIN, seed: int = 0) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (n,), generator=gen)
    part = lambda: NormalizedImages(images, labels, 1 / 255, (0.5,), (0.3,))  # noqa: E731
    return Splits(part(), part(), part(), in_channels=1, resolution=8, num_classes=CLASSES)


def tiny_model():
    return build_supernet("nb201", SPACE, {"channels": 2, "num_classes": CLASSES, "seed": 1})


def pada(**config) -> PadaRule:
    return build_sampler(PADA, SPACE, {"seed": 7, **config})


def recorded(rule):
    """Wrap ``rule.next_step`` to record every step it gives."""
    steps, inner = [], rule.next_step
    rule.next_step = lambda: steps.append(inner()) or steps[-1]
    return steps


def test_op_probabilities_follow_the_measured_op_gradient_norms():
    model, rule, data = tiny_model(), pada(uniform_mix=0.2), tiny_splits()
    x, y = next(iter(data.loader(TRAIN, BATCH)))
    sums, counts = np.zeros((6, 5)), np.zeros((6, 5))
    for _ in range(12):
        model.zero_grad(set_to_none=True)
        step = rule.next_step()
        F.cross_entropy(model(x, step.archs[0]), y).backward()
        rule.observe_step(model, step)
        params = dict(model.named_parameters())
        for e, o in enumerate(step.archs[0]):  # the measurement, independently: ||grad|| of the op's params
            grads = [params[n].grad for n in model.op_parameter_names(e, o) if params[n].grad is not None]
            sums[e, o] += float(torch.sqrt(sum((g ** 2).sum() for g in grads))) if grads else 0.0
            counts[e, o] += 1
    assert rule.op_probs is None  # still uniform until the epoch ends
    rule.end_epoch()
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    np.testing.assert_allclose(rule.op_norm, mean, rtol=1e-5)
    assert (mean[:, PARAM_FREE] == 0).all() and (mean[:, CONVS] > 0).any()
    for e in range(6):
        probs = rule.op_probs[e]
        assert probs.sum() == pytest.approx(1.0) and probs.min() >= 0.2 / 5 - 1e-12
        if mean[e].sum() > 0:
            np.testing.assert_allclose(probs, 0.8 * mean[e] / mean[e].sum() + 0.2 / 5)
            np.testing.assert_allclose(probs[PARAM_FREE], 0.2 / 5)  # parameter-free: the uniform share only
            big, small = np.argmax(mean[e]), np.argmin(mean[e])
            assert probs[big] > probs[small]
    # the next epoch's archs are drawn from those per-edge distributions
    archs = np.array([rule.next_step().archs[0] for _ in range(3000)])
    freq = np.stack([np.bincount(archs[:, e], minlength=5) / len(archs) for e in range(6)])
    np.testing.assert_allclose(freq, rule.op_probs, atol=0.035)


def test_data_probabilities_follow_logit_gradient_norms_and_are_unbiased():
    rule = pada(data_mix=0.25)
    n = 10
    assert rule.epoch_weights(n) is None  # epoch 1: the plain shuffle
    norms = np.linspace(0.1, 1.0, n)
    rule.observe_samples(np.arange(n - 1), norms[:-1])  # the last sample is never drawn
    rule.observe_samples(np.array([0]), np.array([0.3]))  # drawn twice: its norms are averaged
    rule.end_epoch()
    probs = rule.epoch_weights(n)
    d = norms.copy()
    d[0] = (0.1 + 0.3) / 2
    d[-1] = d[:-1].mean()
    np.testing.assert_allclose(probs, 0.75 * d / d.sum() + 0.25 / n)
    assert probs.sum() == pytest.approx(1.0) and probs.min() >= 0.25 / n
    assert (np.diff(probs[1:-1]) > 0).all()  # larger gradient norm, higher probability
    # the logit-gradient norm is the norm of dCE/dlogits
    logits = torch.randn(5, CLASSES, requires_grad=True)
    y = torch.arange(5) % CLASSES
    F.cross_entropy(logits, y, reduction="sum").backward()
    torch.testing.assert_close(logit_grad_norms(logits, y), logits.grad.norm(dim=1))


def test_weighted_loader_and_importance_weighted_loss():
    data = tiny_splits()
    weights = np.full(N_TRAIN, 1.0)
    weights[5] = 200.0
    draws = lambda epoch: torch.cat([b[2] for b in data.loader(TRAIN, BATCH, seed=1, epoch=epoch,  # noqa: E731
                                                               weights=weights, with_indices=True)])
    first = draws(0)
    assert len(first) == N_TRAIN and torch.equal(first, draws(0)) and not torch.equal(first, draws(1))
    assert (first == 5).float().mean() > 0.5  # p_5 = 200 / 247
    model, (x, y, _) = tiny_model(), next(iter(data.loader(TRAIN, BATCH, with_indices=True)))
    arch = (3,) * 6
    w = torch.linspace(0.5, 2.0, BATCH)
    loss = train_step(model, x, y, Step((arch,)), CONFIG, w).loss
    expected = (F.cross_entropy(model(x, arch), y, reduction="none") * w).mean()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-6)


def test_training_weights_each_drawn_sample_by_one_over_n_p(monkeypatch):
    import raynas.supernet.train as train

    seen, inner = [], train.train_step
    monkeypatch.setattr(train, "train_step", lambda model, x, y, step, config, w=None, rec=False:
                        seen.append(w) or inner(model, x, y, step, config, w, rec))
    data, model, rule = tiny_splits(), tiny_model(), pada()
    batches = list(data.loader(TRAIN, BATCH, weights=np.ones(N_TRAIN), with_indices=True))
    probs = np.linspace(1.0, 3.0, N_TRAIN)
    probs /= probs.sum()
    rule.epoch_weights(N_TRAIN)
    train.train_epoch(model, batches, rule, make_optimizer(model, CONFIG), CONFIG, 0, 10, probs)
    for (_, _, idx), w in zip(batches, seen):
        torch.testing.assert_close(w, torch.as_tensor(1 / (N_TRAIN * probs[idx.numpy()]), dtype=torch.float32))
    assert rule._sample_count.sum() == len(batches) * BATCH  # every drawn sample's norm was recorded


def run(rule_config, data, epochs=2, name=PADA):
    model = tiny_model()
    rule = build_sampler(name, SPACE, {"seed": 7, **rule_config})
    steps = recorded(rule)
    history = train_supernet(model, rule, data, CONFIG, eval_archs={}, stop_epoch=epochs)
    return rule, steps, history, model


def test_training_is_deterministic_for_a_seed_and_epoch_one_is_uniform():
    data = tiny_splits()
    rule, steps, history, _ = run({}, data)
    again, steps_again, history_again, _ = run({}, data)
    assert steps == steps_again and [h["train_loss"] for h in history] == [h["train_loss"] for h in history_again]
    assert np.array_equal(rule.op_probs, again.op_probs) and np.array_equal(rule.data_probs, again.data_probs)
    assert rule.data_probs.sum() == pytest.approx(1.0) and rule.data_probs.min() >= 0.2 / N_TRAIN
    assert not np.allclose(rule.data_probs, 1 / N_TRAIN)  # learned, not uniform
    _, other_steps, _, _ = run({"seed": 8}, data)
    assert other_steps != steps
    # epoch 1 is exactly the uniform rule's epoch 1 (same archs, same batches, same loss)
    _, uniform_steps, uniform_history, _ = run({}, data, epochs=1, name=UNIFORM)
    per_epoch = N_TRAIN // BATCH
    assert steps[:per_epoch] == uniform_steps and history[0]["train_loss"] == uniform_history[0]["train_loss"]


def test_checkpoint_resume_continues_identically(tmp_path):
    data = tiny_splits()
    rule, steps, history, model = run({}, data, epochs=3)
    model2, rule2 = tiny_model(), pada()
    opt2 = make_optimizer(model2, CONFIG)
    train_supernet(model2, rule2, data, CONFIG, optimizer=opt2, eval_archs={}, stop_epoch=2)
    write_checkpoint(tmp_path, model2, opt2, rule2, epochs_done=2)
    json.loads((tmp_path / "state.json").read_text())  # the sampler state is plain JSON

    model3, rule3 = tiny_model(), pada()  # a restarted trial rebuilds everything from its config
    opt3 = make_optimizer(model3, CONFIG)
    start = restore_checkpoint(tmp_path, model3, opt3, rule3)
    np.testing.assert_array_equal(rule3.data_probs, rule2.data_probs)
    resumed_steps = recorded(rule3)
    resumed = train_supernet(model3, rule3, data, CONFIG, optimizer=opt3, eval_archs={}, start_epoch=start)
    assert resumed_steps == steps[2 * (N_TRAIN // BATCH):]
    assert resumed[0]["train_loss"] == history[2]["train_loss"]
    assert np.array_equal(rule3.op_probs, rule.op_probs) and np.array_equal(rule3.data_probs, rule.data_probs)
    for key, value in to_numpy(model).items():
        np.testing.assert_array_equal(to_numpy(model3)[key], value)


def test_built_by_name_with_typed_config_and_edge_choice_spaces_only(tiny_space):
    rule = build_sampler(PADA, SPACE, {"num_archs": 2, "uniform_mix": 0.5, "data_mix": 1.0})
    assert isinstance(rule, PadaRule) and len(rule.next_step().archs) == 2
    for bad in ({"uniform_mix": 0.0}, {"data_mix": 1.5}, {"num_archs": 0}, {"path_mix": 0.1}):
        with pytest.raises(RecipeError, match="sampling_config"):
            build_sampler(PADA, SPACE, bad)
    mbv3_rule = build_sampler(PADA, tiny_space)  # builds (uniform archs), but cannot train an mbv3 supernet
    with pytest.raises(ValueError, match="op_parameter_names"):
        mbv3_rule.bind(build_supernet("mbv3", tiny_space))


def test_restricted_sub_space_only_draws_its_ops():
    sub = SubSpace(6, 5, {0: frozenset({2, 3}), 4: frozenset({0})})
    rule = build_sampler(PADA, RestrictedSpace(SPACE, sub), {"seed": 2})
    model, data = tiny_model(), tiny_splits()
    x, y = next(iter(data.loader(TRAIN, BATCH)))
    for _ in range(6):
        model.zero_grad(set_to_none=True)
        step = rule.next_step()
        F.cross_entropy(model(x, step.archs[0]), y).backward()
        rule.observe_step(model, step)
    rule.end_epoch()
    assert rule.op_probs[0, [0, 1, 4]].sum() == 0 and rule.op_probs[4, 0] == 1.0
    assert all(sub.contains(rule.next_step().archs[0]) for _ in range(300))  # next_step also validates
