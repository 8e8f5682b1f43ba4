"""Gaussian blur: its zero-padded gradient (the blur applied again) equals conv2d's."""
import torch

from backend.image_filters import _blur, gaussian_blur


def test_zero_padded_blur_gradient_is_conv2ds():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 17, 23, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 17, 23, dtype=torch.float64)
    fast, = torch.autograd.grad(gaussian_blur(x, 1.7, "constant"), x, g)
    ref, = torch.autograd.grad(_blur(x, 1.7, "constant"), x, g)
    assert fast.abs().max() > 0.1
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(gaussian_blur(x, 1.7, "constant"), _blur(x, 1.7, "constant"), rtol=0, atol=0)


def test_zero_padded_blur_gradcheck():
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_blur(t, 1.1, "constant"), (x,))


def test_replicate_padding_keeps_conv2ds_autograd():
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64, requires_grad=True)
    y = gaussian_blur(x, 1.0)  # replicate: not self-adjoint, conv2d's own backward
    assert "Convolution" in type(y.grad_fn).__name__
