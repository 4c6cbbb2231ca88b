// Shapes and strides (in elements), and the shape arithmetic shared by every op.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace smyrf {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "(8, 64)"; "()" for a scalar

// NumPy broadcasting; throws "[op] shapes cannot broadcast: (2, 3) and (4, 3)".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Maps a possibly negative dim into [0, ndim); throws a message naming op, dim and rank.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

// Sorted, de-duplicated, normalised dims; empty `dims` means all dims.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace smyrf
