// Parameter initialisers, in place (without recording), PyTorch's torch.nn.init semantics.
// Fan-in/fan-out of a tensor of shape (out, in, k...) are in * prod(k) and out * prod(k).
#pragma once
#include "core/random.h"
#include "core/tensor.h"

namespace smyrf::layers::init {

// N(mean, std^2) entries (BigGAN's "N02" init: normal_(t, 0, 0.02)).
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). Needs t.dim() >= 2.
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// A (semi-)orthogonal matrix, viewed as (rows = size(0), cols = numel / rows), times gain: rows
// orthonormal when rows <= cols, columns orthonormal otherwise. Built from a Gaussian matrix by
// Gram-Schmidt QR in double (with R's diagonal positive, so Q is Haar-distributed as in PyTorch).
// Needs t.dim() >= 2.
void orthogonal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace smyrf::layers::init
