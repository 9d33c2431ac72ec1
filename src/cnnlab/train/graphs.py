"""A CUDA-graph training step (`train.graphs=true`): forward, loss, backward and the SGD update captured
once into a CUDA graph and replayed every step, so a small network's step costs one graph launch instead of
hundreds of kernel launches from Python (PyTorch's "whole-network capture", torch.cuda.graphs docs).

What capture needs, and how it is met:
- fixed shapes: the in-memory loader's training batches (drop_last), copied into static input buffers;
- no host synchronisation inside the step: losses and correct counts are summed on the device outside the
  graph (train/accumulator.py reads the static outputs);
- a graph-safe optimizer with a per-step learning rate: torch's SGD bakes a Python-float lr into the graph,
  so the update here is SGD's own rule (weight decay added to the gradient, heavy-ball or Nesterov momentum,
  dampening 0) written with foreach ops and a learning-rate *tensor* per parameter group, filled from
  `group["lr"]` before each replay (the schedule keeps working). The momentum buffers are the optimizer's
  own `state[p]["momentum_buffer"]`, so checkpoints and resumes see ordinary torch SGD state;
- warm-up: three eager steps on a side stream before capture (cuDNN/cuBLAS pick their kernels, the
  autograd state and momentum buffers exist), as the docs prescribe; they are real training steps.

Where a piece cannot be captured (not CUDA, a streamed loader, another optimizer, compile or several
processes), `graph_support` says why and the run trains eagerly with that message in run.json.
Off by default: no GPU has run this path for cnnlab yet (docs/architecture.md, issue 16).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .step import training_loss

WARMUP_STEPS = 3


def graph_support(device: torch.device, batches: Any, optimizer: torch.optim.Optimizer, compiled: bool,
                  distributed: bool) -> str | None:
    """None when the step can be captured, else the reason it cannot (said to the user)."""
    if device.type != "cuda":
        return f"train.graphs needs a CUDA device, this run is on {device.type}"
    if not getattr(batches, "drop_last", False) or type(batches).__name__ != "DeviceBatches":
        return "train.graphs needs fixed-shape batches from the in-memory loader (image folders stream)"
    if type(optimizer) is not torch.optim.SGD:
        return f"train.graphs captures SGD's update (sgd, momentum, nesterov), not {type(optimizer).__name__}"
    if any(group.get("dampening", 0) or group.get("maximize", False) for group in optimizer.param_groups):
        return "train.graphs captures SGD without dampening or maximize"
    if compiled:
        return "train.graphs with train.compile: choose one (compile's mode='reduce-overhead' captures graphs itself)"
    if distributed:
        return "train.graphs is single-process for now (DDP's all-reduce is not captured here)"
    return None


def sgd_update(params: list[torch.Tensor], grads: list[torch.Tensor], buffers: list[torch.Tensor] | None,
               lr: torch.Tensor, momentum: float, weight_decay: float, nesterov: bool) -> None:
    """torch.optim.SGD's rule (dampening 0) with a tensor learning rate, in foreach ops that capture:
    g <- g + wd p;  b <- m b + g;  d <- g + m b (Nesterov) or b;  p <- p - lr d."""
    if weight_decay:
        grads = list(torch._foreach_add(grads, params, alpha=weight_decay))
    step = grads
    if buffers is not None:
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads)
        step = list(torch._foreach_add(grads, buffers, alpha=momentum)) if nesterov else buffers
    torch._foreach_sub_(params, torch._foreach_mul(step, lr))


class GraphStep:
    """Callable like Trainer._step: (images, labels) -> (loss, logits), both detached device tensors."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, autocast_dtype: torch.dtype | None,
                 label_smoothing: float = 0.0) -> None:
        self.model, self.optimizer, self.dtype = model, optimizer, autocast_dtype
        self.label_smoothing = label_smoothing
        device = next(model.parameters()).device
        self.rates = [torch.zeros((), device=device) for _ in optimizer.param_groups]
        self.taken = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: dict[str, torch.Tensor] = {}

    def _groups(self) -> list[tuple[dict, list[torch.Tensor], torch.Tensor]]:
        out = []
        for group, rate in zip(self.optimizer.param_groups, self.rates):
            params = [p for p in group["params"] if p.requires_grad]
            out.append((group, params, rate))
        return out

    def _update(self) -> None:
        for group, params, rate in self._groups():
            params = [p for p in params if p.grad is not None]
            if not params:
                continue
            buffers = None
            if group["momentum"]:
                buffers = []
                for p in params:
                    state = self.optimizer.state[p]
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = torch.zeros_like(p)  # m*0 + g = g: torch SGD's first step
                    buffers.append(state["momentum_buffer"])
            grads = [p.grad for p in params if p.grad is not None]  # all of them: filtered above
            sgd_update(params, grads, buffers, rate, group["momentum"], group["weight_decay"], group["nesterov"])

    def _forward_backward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enabled = self.dtype is not None
        with torch.autocast("cuda", dtype=self.dtype or torch.bfloat16, enabled=enabled, cache_enabled=False):
            logits = self.model(images)
            loss = training_loss(logits, labels, self.label_smoothing)  # labels: hard, or mixing's soft targets
        loss.backward()
        return loss.detach(), logits.detach()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for group, rate in zip(self.optimizer.param_groups, self.rates):
            rate.fill_(group["lr"])  # the schedule's value for this step, read by the captured update
        if self.graph is None and self.taken < WARMUP_STEPS:
            self.taken += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.optimizer.zero_grad(set_to_none=True)
                loss, logits = self._forward_backward(images, labels)
                self._update()
            torch.cuda.current_stream().wait_stream(side)
            return loss, logits
        if self.graph is None:
            self._capture(images, labels)
        self.static["images"].copy_(images)
        self.static["labels"].copy_(labels)
        assert self.graph is not None  # captured above
        self.graph.replay()
        return self.static["loss"], self.static["logits"]

    def _capture(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.static["images"] = images.clone()
        self.static["labels"] = labels.clone()
        self.optimizer.zero_grad(set_to_none=True)  # gradients allocated from the graph's private pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            loss, logits = self._forward_backward(self.static["images"], self.static["labels"])
            self._update()
        self.static["loss"], self.static["logits"] = loss, logits
