import math

import pytest
import torch

from modistill.losses import (
    generalized_distillation_loss,
    hallucination_loss,
    modality_distillation_loss,
    soft_cross_entropy,
)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_hallucination_loss_by_hand():
    t = {"layer4": torch.tensor([[0.0, 1.0], [2.0, 0.0]])}
    s = {"layer4": torch.tensor([[0.0, 0.0], [1.0, 3.0]], requires_grad=True)}
    d = [0.0, (sig(1) - 0.5) ** 2, (sig(2) - sig(1)) ** 2, (0.5 - sig(3)) ** 2]
    assert hallucination_loss(t, s, reduction="sum").item() == pytest.approx(sum(d), rel=1e-6)
    assert hallucination_loss(t, s, reduction="mean").item() == pytest.approx(sum(d) / 4, rel=1e-6)
    assert hallucination_loss(t, s, reduction="sum", weight=0.01).item() == pytest.approx(0.01 * sum(d), rel=1e-6)
    # Eq. 3 as printed: the squared L2 norm per video; here the two rows are the two frames of one video.
    assert hallucination_loss(t, s, reduction="per_video", videos=1).item() == pytest.approx(sum(d), rel=1e-6)
    assert hallucination_loss(t, s, reduction="per_video", videos=2).item() == pytest.approx(sum(d) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="number of videos"):
        hallucination_loss(t, s, reduction="per_video")
    two = hallucination_loss(
        {**t, "layer3": t["layer4"]}, {**s, "layer3": s["layer4"]}, ["layer3", "layer4"], reduction="sum"
    )
    assert two.item() == pytest.approx(2 * sum(d), rel=1e-6)
    t["layer4"].requires_grad_(True)
    hallucination_loss(t, s).backward()
    assert t["layer4"].grad is None and s["layer4"].grad is not None


def test_generalized_distillation_by_hand():
    student = torch.tensor([[1.0, 2.0, 0.0]])
    teacher = torch.tensor([[3.0, 0.0, 1.0]])
    y = torch.tensor([1])
    T, lam = 2.0, 0.3

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    q = softmax([1.0, 2.0, 0.0])
    hard = -math.log(q[1])
    p_t = softmax([1.5, 0.0, 0.5])
    q_t = softmax([0.5, 1.0, 0.0])
    soft = -sum(a * math.log(b) for a, b in zip(p_t, q_t, strict=True))
    assert soft_cross_entropy(student, teacher, T).item() == pytest.approx(soft, rel=1e-6)
    got = generalized_distillation_loss(student, y, teacher, lam, T)
    assert got.item() == pytest.approx((1 - lam) * hard + lam * soft, rel=1e-6)
    got_t2 = generalized_distillation_loss(student, y, teacher, lam, T, t2_scaling=True)
    assert got_t2.item() == pytest.approx((1 - lam) * hard + lam * soft * T * T, rel=1e-6)
    assert generalized_distillation_loss(student, y, teacher, 0.0, T).item() == pytest.approx(hard, rel=1e-6)


def test_modality_distillation_eq7_and_released_weighting():
    torch.manual_seed(0)
    s_logits, t_logits = torch.randn(4, 5), torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    tf, sf = {"layer4": torch.randn(4, 3, 2, 2)}, {"layer4": torch.randn(4, 3, 2, 2)}
    gd = generalized_distillation_loss(s_logits, y, t_logits, 0.5, 10.0)
    hall = hallucination_loss(tf, sf)
    got = modality_distillation_loss(s_logits, y, t_logits, tf, sf, alpha=0.25)
    assert got.item() == pytest.approx(0.75 * gd.item() + 0.25 * hall.item(), rel=1e-6)
    # Released code: 0.25 CE + 0.25 soft(T=10) + 0.005 * sum of squared sigmoid differences.
    rel = modality_distillation_loss(
        s_logits, y, t_logits, tf, sf, alpha=0.5, lam=0.5, temperature=10.0, reduction="sum", hall_weight=0.01
    )
    ce = torch.nn.functional.cross_entropy(s_logits, y)
    soft = soft_cross_entropy(s_logits, t_logits, 10.0)
    hsum = (torch.sigmoid(tf["layer4"]) - torch.sigmoid(sf["layer4"])).pow(2).sum()
    assert rel.item() == pytest.approx((0.25 * ce + 0.25 * soft + 0.005 * hsum).item(), rel=1e-6)
