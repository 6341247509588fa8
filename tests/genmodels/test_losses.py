"""Each loss and penalty against values worked out by hand on tiny tensors."""

import math

import pytest
import torch
from torch import nn

from genmodels.gans import losses as L

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def _softplus(x):
    return math.log1p(math.exp(x))


def test_nonsaturating_and_minimax():
    # D: mean(-log sigmoid(real)) + mean(-log(1 - sigmoid(fake)))
    expected_d = (_softplus(-2.0) + _softplus(1.0)) / 2 + (_softplus(0.5) + _softplus(-3.0)) / 2
    assert L.d_loss_nonsaturating(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert L.g_loss_nonsaturating(FAKE).item() == pytest.approx((_softplus(-0.5) + _softplus(3.0)) / 2, rel=1e-6)
    # minimax G: mean(log(1 - sigmoid(fake))) = -mean(softplus(fake))
    assert L.g_loss_minimax(FAKE).item() == pytest.approx(-(_softplus(0.5) + _softplus(-3.0)) / 2, rel=1e-6)


def test_one_sided_label_smoothing_changes_only_the_real_term():
    t = 0.9
    real = (t * _softplus(-2.0) + (1 - t) * _softplus(2.0) + t * _softplus(1.0) + (1 - t) * _softplus(-1.0)) / 2
    fake = (_softplus(0.5) + _softplus(-3.0)) / 2
    assert L.d_loss_nonsaturating(REAL, FAKE, real_target=t).item() == pytest.approx(real + fake, rel=1e-6)


def test_hinge():
    # mean(relu(1 - [2, -1])) = (0 + 2)/2 = 1 ; mean(relu(1 + [0.5, -3])) = (1.5 + 0)/2 = 0.75
    assert L.d_loss_hinge(REAL, FAKE).item() == pytest.approx(1.75)
    assert L.g_loss_hinge(FAKE).item() == pytest.approx(1.25)


def test_least_squares():
    # 0.5 * mean([1, 4]) + 0.5 * mean([0.25, 9]) = 1.25 + 2.3125
    assert L.d_loss_least_squares(REAL, FAKE).item() == pytest.approx(3.5625)
    # 0.5 * mean([0.25, 16]) = 4.0625
    assert L.g_loss_least_squares(FAKE).item() == pytest.approx(4.0625)


def test_wasserstein():
    # E[f(fake)] - E[f(real)] = -1.25 - 0.5
    assert L.d_loss_wasserstein(REAL, FAKE).item() == pytest.approx(-1.75)
    assert L.g_loss_wasserstein(FAKE).item() == pytest.approx(1.25)


class _Linear(nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([[[3.0, 4.0]]])  # ||w|| = 5 -> penalty (5 - 1)^2 = 16 wherever we look
    penalty, norm = L.gradient_penalty(_Linear(w), torch.randn(4, 1, 1, 2), torch.randn(4, 1, 1, 2))
    assert penalty.item() == pytest.approx(16.0) and norm.item() == pytest.approx(5.0)
    penalty.backward()  # create_graph: the penalty trains the critic
    critic = _Linear(w)
    L.gradient_penalty(critic, torch.randn(4, 1, 1, 2), torch.randn(4, 1, 1, 2))[0].backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * w / 5
    torch.testing.assert_close(critic.w.grad, 8 * w / 5)


def test_gradient_penalty_on_a_quadratic_critic_uses_the_interpolates():
    # D(x) = 0.5 ||x||^2 -> grad = x_hat; real = 2, fake = 0 -> x_hat = 2 eps, norm = 2 eps.
    g = torch.Generator().manual_seed(0)
    eps = torch.rand((3, 1), generator=torch.Generator().manual_seed(0))
    penalty, _ = L.gradient_penalty(lambda x: 0.5 * x.pow(2).sum(1), torch.full((3, 1), 2.0), torch.zeros(3, 1), generator=g)
    assert penalty.item() == pytest.approx(((2 * eps - 1) ** 2).mean().item(), rel=1e-6)


def test_r1_penalty_is_the_squared_input_gradient():
    # D(x) = 0.5 ||x||^2 -> ||grad||^2 = ||x||^2
    x = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    penalty, norm = L.r1_penalty(lambda v: 0.5 * v.pow(2).sum(1), x)
    assert penalty.item() == pytest.approx((5.0 + 9.0) / 2)
    assert norm.item() == pytest.approx((math.sqrt(5) + 3.0) / 2)


def test_clip_weights():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.5], [0.001, -0.002]]))
    L.clip_weights_(layer, 0.01)
    assert layer.weight.tolist() == [[0.01, -0.01], [0.001, -0.002]] or torch.allclose(
        layer.weight, torch.tensor([[0.01, -0.01], [0.001, -0.002]])
    )
    assert layer.bias.abs().max() <= 0.01


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_penalties_under_autocast_equal_fp32(dtype, penalty):
    """Tolerance: 1e-6 relative; the penalty turns autocast off and runs D in float32."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)

    def value():
        torch.manual_seed(1)  # same interpolation weights
        if penalty == "gp":
            return L.gradient_penalty(critic, real, fake)[0]
        return L.r1_penalty(critic, real)[0]

    reference = value()
    with torch.autocast("cpu", dtype=dtype):
        mixed = value()
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=1e-6, atol=0)


# -- relativistic average losses (Jolicoeur-Martineau 2019, arXiv:1807.00734) --------------------

C_REAL = [1.5, -0.5, 0.25, 2.0]
C_FAKE = [-1.0, 0.75, -2.0]


def _mean(xs):
    return sum(xs) / len(xs)


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_ragan_against_the_paper():
    # Sec. 4.2: D~(x_r) = sigmoid(C(x_r) - E C(x_f)), D~(x_f) = sigmoid(C(x_f) - E C(x_r));
    # L_D = -E log D~(x_r) - E log(1 - D~(x_f)); L_G = -E log D~(x_f) - E log(1 - D~(x_r)).
    # The authors' code (AlexiaJM/RelativisticGAN, RaSGAN) halves both sums.
    mr, mf = _mean(C_REAL), _mean(C_FAKE)
    paper_d = -_mean([_log_sigmoid(r - mf) for r in C_REAL]) - _mean([_log_sigmoid(-(f - mr)) for f in C_FAKE])
    paper_g = -_mean([_log_sigmoid(f - mr) for f in C_FAKE]) - _mean([_log_sigmoid(-(r - mf)) for r in C_REAL])
    real, fake = torch.tensor(C_REAL, dtype=torch.float64), torch.tensor(C_FAKE, dtype=torch.float64)
    loss = L.LOSSES["ragan"]
    assert loss.relativistic and loss.logits
    assert math.isclose(float(loss.d(real, fake, 1.0)), paper_d / 2, rel_tol=1e-12)
    assert math.isclose(float(loss.g(fake, real)), paper_g / 2, rel_tol=1e-12)


def test_ralsgan_against_the_paper():
    # Sec. 4.2: L_D = E[(C(x_r) - E C(x_f) - 1)^2] + E[(C(x_f) - E C(x_r) + 1)^2];
    # L_G = E[(C(x_f) - E C(x_r) - 1)^2] + E[(C(x_r) - E C(x_f) + 1)^2]; halved in the authors' code.
    mr, mf = _mean(C_REAL), _mean(C_FAKE)
    paper_d = _mean([(r - mf - 1) ** 2 for r in C_REAL]) + _mean([(f - mr + 1) ** 2 for f in C_FAKE])
    paper_g = _mean([(f - mr - 1) ** 2 for f in C_FAKE]) + _mean([(r - mf + 1) ** 2 for r in C_REAL])
    real, fake = torch.tensor(C_REAL, dtype=torch.float64), torch.tensor(C_FAKE, dtype=torch.float64)
    loss = L.LOSSES["ralsgan"]
    assert loss.relativistic and not loss.logits
    assert math.isclose(float(loss.d(real, fake, 1.0)), paper_d / 2, rel_tol=1e-12)
    assert math.isclose(float(loss.g(fake, real)), paper_g / 2, rel_tol=1e-12)


def test_a_relativistic_generator_step_sees_d_on_real_images():
    from genmodels import DCGAN

    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, loss="ragan")
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1}
    fake = model.generate(batch)
    loss, _ = model.generator_loss(batch, fake)
    real_out, fake_out = model.discriminate(batch["image"]), model.discriminate(fake)
    torch.testing.assert_close(loss, L.LOSSES["ragan"].g(fake_out, real_out))
    with pytest.raises(ValueError, match="loss"):
        DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, loss="rsgan")
