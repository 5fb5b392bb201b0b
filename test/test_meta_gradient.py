"""Both meta-gradient backends (vmapped and routed) compute the DMIL meta-gradient: equal to an
independent per-task autograd loop, to finite differences, and genuinely second order."""

from __future__ import annotations

import pytest
import torch
from reference_loop import ReferenceDMIL

from dmil_ros.core.config import VARIANTS, ModelConfig, make_dmil_config
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.dmil import meta_gradients, resolve_backend, task_outer_loss
from dmil_ros.core.networks import Params


def _reference(model: ModelConfig, params: Params, batch: MetaBatch, cfg) -> Params:
    ref = ReferenceDMIL(model, params)
    for p in ref.parameters():
        p.data = p.data.double()
    return ref.as_params_grads(ref.meta_gradients(batch, cfg), params)


BACKENDS = ("vmap", "routed")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_per_task_autograd_loop(variant, backend, tiny_model, tiny_params64, batch64):
    cfg = make_dmil_config(variant, inner_lr=0.5)
    grads, _ = meta_gradients(tiny_params64, batch64, cfg, backend=backend)
    expected = _reference(tiny_model, tiny_params64, batch64, cfg)
    for name in tiny_params64:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-9, atol=1e-12, msg=name)


def _outer_loss(params: Params, batch: MetaBatch, cfg) -> float:
    losses = [
        task_outer_loss(params, batch.obs[t], batch.act[t], batch.next_same, cfg)[0]
        for t in range(batch.obs.shape[0])
    ]
    return float(torch.stack(losses).mean())


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_finite_differences(backend, tiny_params64, batch64):
    cfg = make_dmil_config("dmil", inner_lr_high=0.3, inner_lr_low=0.3)
    grads, _ = meta_gradients(tiny_params64, batch64, cfg, backend=backend)
    g = torch.Generator().manual_seed(1)
    eps = 1e-6
    for _ in range(3):
        direction = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in tiny_params64.items()}
        plus = {k: v + eps * direction[k] for k, v in tiny_params64.items()}
        minus = {k: v - eps * direction[k] for k, v in tiny_params64.items()}
        numeric = (_outer_loss(plus, batch64, cfg) - _outer_loss(minus, batch64, cfg)) / (2 * eps)
        analytic = sum(float((grads[k] * direction[k]).sum()) for k in tiny_params64)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_order_terms_are_present(backend, tiny_params64, batch64):
    second_order = make_dmil_config("dmil", inner_lr=0.5, backend=backend)
    first_order = make_dmil_config("dmil-fo", inner_lr=0.5, backend=backend)
    second, _ = meta_gradients(tiny_params64, batch64, second_order)
    first, _ = meta_gradients(tiny_params64, batch64, first_order)
    diff = max(float((second[k] - first[k]).abs().max()) for k in second)
    assert diff > 1e-6, "first- and second-order meta-gradients should differ"


def test_no_inner_step_equals_plain_gradient(tiny_params64, batch64):
    """With alpha=0 the meta-gradient must reduce to the ordinary gradient of the query losses."""
    cfg = make_dmil_config("dmil", inner_lr=0.0)
    grads, _ = meta_gradients(tiny_params64, batch64, cfg)
    params = {k: v.clone().requires_grad_(True) for k, v in tiny_params64.items()}
    loss = torch.stack(
        [task_outer_loss(params, batch64.obs[t], batch64.act[t], batch64.next_same, cfg)[0] for t in range(3)]
    ).mean()
    loss.backward()
    for k, p in params.items():
        torch.testing.assert_close(grads[k], p.grad)


def test_backends_report_the_same_diagnostics(tiny_params64, batch64):
    cfg = make_dmil_config("dmil", inner_lr=0.5)
    _, vmapped = meta_gradients(tiny_params64, batch64, cfg, backend="vmap")
    _, routed = meta_gradients(tiny_params64, batch64, cfg, backend="routed")
    assert vmapped.keys() == routed.keys()
    for name in vmapped:
        torch.testing.assert_close(routed[name], vmapped[name], check_dtype=False, msg=name)


def test_unknown_backend_is_refused(tiny_params64, batch64):
    with pytest.raises(ValueError, match="backend"):
        meta_gradients(tiny_params64, batch64, make_dmil_config("dmil"), backend="magic")
    with pytest.raises(ValueError, match="backend"):
        make_dmil_config("dmil", backend="magic")


def test_auto_backend_routes_on_cpu_for_wide_nets_only():
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu, 256) == "routed"
    assert resolve_backend("auto", cpu, 64) == "vmap"
    assert resolve_backend("auto", torch.device("cuda"), 512) == "vmap"
    assert resolve_backend("vmap", cpu, 512) == "vmap"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(tiny_params64, batch64):
    cfg = make_dmil_config("dmil", inner_lr=0.5)
    cpu, _ = meta_gradients(tiny_params64, batch64, cfg)
    gpu, _ = meta_gradients({k: v.cuda() for k, v in tiny_params64.items()}, batch64.to("cuda"), cfg)
    for name in cpu:
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], rtol=1e-7, atol=1e-10, msg=name)
