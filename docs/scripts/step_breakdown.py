"""Where one CPU training step of a FerCNN goes, layer by layer, forward and backward.

    python docs/scripts/step_breakdown.py [train.py overrides]     # e.g. model=leaky data.batch_size=64

The step is fer-train's: the configured net in the precision and memory format fer-train would choose, the
configured batch size, the configured loss and optimizer, host memory kept between steps; the faces are
random (a dense conv takes as long on noise as on faces). Each layer's forward is timed between hooks before and
after it; its backward as the time from its output's gradient arriving to its input's gradient arriving.
Written because torch.profiler's per-op table (record_shapes on) put 146 ms on a BatchNorm forward that these
hooks time at 7 ms in the same kind of step (2-core AMD EPYC, 2026-12-02).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from fer_lightning.cli.common import CONF_DIR
from fer_lightning.fer2013 import IMAGE_SIDE, NUM_CLASSES
from fer_lightning.host_memory import keep_freed_memory
from fer_lightning.models import cnn
from fer_lightning.models.small_map_conv import small_map_conv
from fer_lightning.precision import resolve_precision

WARMUP_STEPS, TIMED_STEPS = 5, 20


def layers_of(net: cnn.FerCNN) -> list[tuple[str, nn.Module]]:
    """The conv part layer by layer, each fused activation -> BatchNorm -> max-pool -> dropout (which runs in place
    of those four in training) as one more entry, the dense head as one entry; in the order of the features."""
    layers = [(i, f"{i:02d} {type(m).__name__}", m) for i, m in enumerate(net.features)]
    tails = [(i + 0.5, f"{i:02d}-{i + 3:02d} fused", tail) for i, tail in net.fused_tails.items()]
    return [(name, m) for _, name, m in sorted([*layers, *tails], key=lambda entry: entry[0])] + [("head", net.head)]


@dataclass
class Step:
    """fer-train's training step on random faces, built from train.py overrides; ``run()`` takes one step and
    returns when its backward pass started and ended (``time.perf_counter()``)."""

    cfg: DictConfig
    net: cnn.FerCNN
    precision: str
    channels_last: bool
    run: Callable[[], tuple[float, float]]


def build_step(overrides: list[str]) -> Step:
    """The configured net in the precision and memory format fer-train would choose, its loss and optimizer, the
    configured batch size, host memory kept between steps."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if cfg.keep_freed_memory:
        keep_freed_memory()
    precision, channels_last = resolve_precision(cfg.trainer.precision, cfg.channels_last, "cpu")
    torch.manual_seed(0)
    module = instantiate(cfg.model, channels_last=channels_last, _convert_="all")  # fer-train's loss and optimizer
    net, criterion = module.net, module.criterion
    optimizer = module.make_optimizer(params=net.parameters())
    layout = torch.channels_last if channels_last else torch.contiguous_format
    faces = torch.randn(cfg.data.batch_size, 1, IMAGE_SIDE, IMAGE_SIDE).contiguous(memory_format=layout)
    labels = torch.randint(0, NUM_CLASSES, (cfg.data.batch_size,))

    def run() -> tuple[float, float]:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
            logits = net(faces)
        loss = criterion(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss.backward()
        end = time.perf_counter()
        optimizer.step()
        return start, end

    return Step(cfg, net, precision, channels_last, run)


def main(overrides: list[str]) -> None:
    built = build_step(overrides)
    cfg, net, precision, channels_last = built.cfg, built.net, built.precision, built.channels_last
    layers = layers_of(net)
    forward_s: dict[str, float] = defaultdict(float)
    backward_s: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    grad_at: dict[str, float] = {}  # when the gradient of each layer's output arrived, this step
    ran: list[str] = []  # the layers that ran this step, in order (a fused tail runs instead of its four layers)

    def before(name: str) -> Callable[..., None]:
        return lambda module, inputs: started.__setitem__(name, time.perf_counter())

    def after(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            forward_s[name] += time.perf_counter() - started[name]
            ran.append(name)
            if output.requires_grad:
                output.register_hook(lambda grad: grad_at.__setitem__(name, time.perf_counter()))
        return hook

    for name, module in layers:
        module.register_forward_pre_hook(before(name))
        module.register_forward_hook(after(name))
    name_of = {id(module): name for name, module in layers}

    def hooked_small_map_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:  # it calls no module hooks
        before(name_of[id(conv)])(conv, (x,))
        out = small_map_conv(conv, x)
        after(name_of[id(conv)])(conv, (x,), out)
        return out

    cnn.small_map_conv = hooked_small_map_conv

    def step(timed: bool) -> None:
        ran.clear()
        start, end = built.run()
        if not timed:
            return
        names = list(ran)
        arrivals = [grad_at[name] for name in names]  # the head's output first in time, the first layer's last
        backward_s["loss"] += arrivals[-1] - start
        for i, name in enumerate(names):  # a layer's backward ends when its input's gradient arrives
            backward_s[name] += (arrivals[i - 1] if i > 0 else end) - arrivals[i]

    for _ in range(WARMUP_STEPS):
        step(timed=False)
    forward_s.clear()
    begin = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step(timed=True)
    total_ms = (time.perf_counter() - begin) / TIMED_STEPS * 1e3

    print(f"{precision}, {'channels_last' if channels_last else 'NCHW'}, batch {cfg.data.batch_size}, "
          f"{torch.get_num_threads()} threads: {total_ms:.1f} ms per step, "
          f"{cfg.data.batch_size / total_ms * 1e3:.0f} img/s (the mean of {TIMED_STEPS} after {WARMUP_STEPS})")
    print(f"{'layer':<18}{'forward ms':>12}{'backward ms':>13}{'share':>8}")
    loss_ms = backward_s.pop("loss") / TIMED_STEPS * 1e3
    print(f"{'loss':<18}{'':>12}{loss_ms:>13.2f}{loss_ms / total_ms:>8.1%}")
    for name, _ in layers:
        if name not in forward_s:
            continue
        fwd, bwd = forward_s[name] / TIMED_STEPS * 1e3, backward_s[name] / TIMED_STEPS * 1e3
        print(f"{name:<18}{fwd:>12.2f}{bwd:>13.2f}{(fwd + bwd) / total_ms:>8.1%}")
    timed_ms = loss_ms + (sum(forward_s.values()) + sum(backward_s.values())) / TIMED_STEPS * 1e3
    print(f"{'optimizer, rest':<18}{total_ms - timed_ms:>25.2f}{(total_ms - timed_ms) / total_ms:>8.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
