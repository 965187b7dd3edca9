import torch

from caltrain.train.mixup import mix_batch


def test_mixup_is_a_convex_combination_and_reproducible():
    x = torch.randn(6, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    m1, p1, l1 = mix_batch(x, 0.4, g1)
    m2, p2, l2 = mix_batch(x, 0.4, g2)
    assert l1 == l2 and torch.equal(p1, p2) and torch.equal(m1, m2)
    assert 0 <= l1 <= 1
    torch.testing.assert_close(m1, l1 * x + (1 - l1) * x[p1])
    assert sorted(p1.tolist()) == list(range(6))


def test_mixup_lambda_follows_beta():
    g = torch.Generator().manual_seed(0)
    lams = torch.tensor([mix_batch(torch.zeros(2, 1), 2.0, g)[2] for _ in range(2000)])
    assert abs(lams.mean().item() - 0.5) < 0.02  # Beta(2, 2): mean 1/2, variance 1/20
    assert abs(lams.var().item() - 0.05) < 0.01
