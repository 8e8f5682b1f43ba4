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


def test_shifted_blur_is_conv2ds_bit_for_bit():
    """The CPU float32 path (shifted multiply-adds) gives conv2d's numbers exactly, on the shapes
    the texture feather, the detail low-pass and the identity chips use."""
    from backend.image_filters import _blur_conv, _blur_shifted, gaussian_kernel1d

    torch.manual_seed(0)
    for shape, sigma in [((1, 1, 128, 384), 6.0), ((4, 3, 64, 64), 2.3), ((2, 1, 33, 47), 0.5), ((1, 3, 40, 40), 11.7)]:
        x = torch.rand(shape)
        k = gaussian_kernel1d(sigma)
        for padding in ("constant", "replicate"):
            fast, ref = _blur_shifted(x, k, padding), _blur_conv(x, k, padding)
            assert ref.abs().max() > 0.1
            assert torch.equal(fast, ref), (shape, sigma, padding)
    x = torch.rand(1, 1, 20, 20, requires_grad=True)  # float32 with autograd: conv2d's graph
    assert "Convolution" in type(_blur(x, 1.0, "replicate").grad_fn).__name__
