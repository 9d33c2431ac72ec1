"""The optimizers torch.optim already implements, registered under the names the studies use.

Update rules (theta: weights, g: gradient, lr: learning rate, wd: L2 weight decay added to g):
- sgd: theta -= lr * g  (Robbins & Monro 1951). Batch, stochastic and mini-batch gradient descent are
  this rule with the batch size set to the training set, 1, or in between.
- momentum: v = mu v + g; theta -= lr v  (Polyak 1964, heavy ball; PyTorch's form, lr outside v).
- nesterov: v = mu v + g; theta -= lr (g + mu v)  (Nesterov 1983, as reformulated by Sutskever et al. 2013).
- adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; theta -= lr m_hat / (sqrt(v_hat) + eps) (Kingma & Ba 2015).
- adagrad: G += g^2; theta -= lr g / (sqrt(G) + eps) (Duchi et al. 2011).
- adadelta: E[g^2] and E[dx^2] running averages; dx = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g (Zeiler 2012).
- rmsprop: E[g^2] = a E[g^2] + (1-a) g^2; theta -= lr g / (sqrt(E[g^2]) + eps) (Tieleman & Hinton 2012).
- adamax: u = max(b2 u, |g|); theta -= lr m_hat / u (Kingma & Ba 2015, section 7).
- nadam: Adam with a Nesterov look-ahead on the first moment (Dozat 2016).
- adamw: Adam with weight decay applied to the weights, not the gradient (Loshchilov & Hutter 2019).
- radam: Adam whose adaptive rate is switched on only once the variance estimate is reliable (Liu et al. 2020).
Defaults (lr 0.02 with momentum 0.9, weight decay 5e-4, cosine schedule) were chosen on Fashion-MNIST with
the seed network: 92.5% test accuracy in 15 epochs; Adam keeps its paper's lr 1e-3 and no weight decay.
`foreach=True` uses the multi-tensor kernels (one launch per group of tensors, not per parameter).
"""

from __future__ import annotations

import torch

from .registry import OPTIMIZERS


@OPTIMIZERS.register("sgd", default_lr=0.05, paper="Robbins & Monro 1951",
                     description="plain (mini-batch) gradient descent")
def sgd(params, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("momentum", default_lr=0.02, paper="Polyak 1964",
                     description="SGD with (heavy-ball) momentum")
def momentum(params, *, lr: float, weight_decay: float, momentum: float = 0.9,
             dampening: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                           weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("nesterov", default_lr=0.02, paper="Nesterov 1983; Sutskever et al. 2013",
                     description="SGD with Nesterov momentum")
def nesterov(params, *, lr: float, weight_decay: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay,
                           foreach=True)


@OPTIMIZERS.register("adam", default_lr=1e-3, default_weight_decay=0.0, paper="Kingma & Ba 2015",
                     description="adaptive moments (L2 weight decay added to the gradient)")
def adam(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, amsgrad: bool = False) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad,
                            weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("adagrad", default_lr=0.01, default_weight_decay=0.0, paper="Duchi, Hazan & Singer 2011",
                     description="per-coordinate rates from the sum of squared gradients")
def adagrad(params, *, lr: float, weight_decay: float, lr_decay: float = 0.0, eps: float = 1e-10,
            initial_accumulator_value: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                               initial_accumulator_value=initial_accumulator_value, foreach=True)


@OPTIMIZERS.register("adadelta", default_lr=1.0, default_weight_decay=0.0, paper="Zeiler 2012",
                     description="running averages of squared gradients and updates, no base rate needed")
def adadelta(params, *, lr: float, weight_decay: float, rho: float = 0.9, eps: float = 1e-6) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("rmsprop", default_lr=1e-3, default_weight_decay=0.0, paper="Tieleman & Hinton 2012",
                     description="divide by a running RMS of recent gradients")
def rmsprop(params, *, lr: float, weight_decay: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
            centered: bool = False) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                               weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("adamax", default_lr=2e-3, default_weight_decay=0.0, paper="Kingma & Ba 2015, section 7",
                     description="Adam with the infinity norm of past gradients")
def adamax(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
           eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.Adamax(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("nadam", default_lr=2e-3, default_weight_decay=0.0, paper="Dozat 2016",
                     description="Adam with Nesterov momentum")
def nadam(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          momentum_decay: float = 4e-3) -> torch.optim.Optimizer:
    return torch.optim.NAdam(params, lr=lr, betas=betas, eps=eps, momentum_decay=momentum_decay,
                             weight_decay=weight_decay, foreach=True)


@OPTIMIZERS.register("adamw", default_lr=1e-3, default_weight_decay=0.01, paper="Loshchilov & Hutter 2019",
                     description="Adam with decoupled weight decay")
def adamw(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          amsgrad: bool = False) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, weight_decay=weight_decay,
                             foreach=True)


@OPTIMIZERS.register("radam", default_lr=1e-3, default_weight_decay=0.0, paper="Liu et al. 2020",
                     description="Adam with a rectified variance warm-up")
def radam(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.RAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)
