// The F(4x4, 3x3) tile transforms written once over a lane type V (float for the scalar twin,
// an 8-float AVX2 vector in winograd_avx2.cpp), so the two variants compute the same expressions
// in the same order. V needs +, - and * by float. Matrices (Lavin & Gray 2016):
//   B^T = [4  0 -5  0 1 0]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
// Internal header of kernels/cpu/winograd*.cpp.
#pragma once

namespace smyrf::kernels::cpu::winograd {

// o = B^T d over 6 values (stride-free; the callers apply it to columns, then rows).
template <typename V>
inline void bt6(const V d[6], V o[6]) {
  const V t1 = d[4] - d[2] * 4.0f, t2 = d[3] - d[1] * 4.0f;
  const V t3 = d[4] - d[2], t4 = (d[3] - d[1]) * 2.0f;
  o[0] = d[0] * 4.0f - d[2] * 5.0f + d[4];
  o[1] = t1 + t2;
  o[2] = t1 - t2;
  o[3] = t3 + t4;
  o[4] = t3 - t4;
  o[5] = d[1] * 4.0f - d[3] * 5.0f + d[5];
}

// y = A^T m (6 -> 4).
template <typename V>
inline void at6(const V m[6], V y[4]) {
  const V a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  y[0] = m[0] + a + c;
  y[1] = b + d * 2.0f;
  y[2] = a + c * 4.0f;
  y[3] = b + d * 8.0f + m[5];
}

// dm = A dy (4 -> 6), the adjoint of at6.
template <typename V>
inline void a4(const V dy[4], V dm[6]) {
  const V e = dy[0] + dy[2], o = dy[1] + dy[3];
  const V e4 = dy[0] + dy[2] * 4.0f, o4 = dy[1] * 2.0f + dy[3] * 8.0f;
  dm[0] = dy[0];
  dm[1] = e + o;
  dm[2] = e - o;
  dm[3] = e4 + o4;
  dm[4] = e4 - o4;
  dm[5] = dy[3];
}

// v[xi] = (B^T d B)[xi] for one 6x6 tile d (row-major), both as V.
template <typename V>
inline void input_tile(const V d[36], V v[36]) {
  V t[36];
  for (int b = 0; b < 6; ++b) {  // columns: t[:, b] = B^T d[:, b]
    V col[6], out[6];
    for (int a = 0; a < 6; ++a) col[a] = d[a * 6 + b];
    bt6(col, out);
    for (int a = 0; a < 6; ++a) t[a * 6 + b] = out[a];
  }
  for (int i = 0; i < 6; ++i) bt6(t + i * 6, v + i * 6);  // rows: v[i, :] = B^T t[i, :]
}

// y = A^T m A (4x4 row-major) for one 6x6 tile m.
template <typename V>
inline void output_tile(const V m[36], V y[16]) {
  V t[24];  // 4 x 6
  for (int j = 0; j < 6; ++j) {
    V col[6], out[4];
    for (int i = 0; i < 6; ++i) col[i] = m[i * 6 + j];
    at6(col, out);
    for (int p = 0; p < 4; ++p) t[p * 6 + j] = out[p];
  }
  for (int p = 0; p < 4; ++p) at6(t + p * 6, y + p * 4);
}

// dm = A dy A^T (6x6) for one 4x4 tile dy.
template <typename V>
inline void grad_output_tile(const V dy[16], V dm[36]) {
  V t[24];  // 6 x 4
  for (int q = 0; q < 4; ++q) {
    V col[4], out[6];
    for (int p = 0; p < 4; ++p) col[p] = dy[p * 4 + q];
    a4(col, out);
    for (int i = 0; i < 6; ++i) t[i * 4 + q] = out[i];
  }
  for (int i = 0; i < 6; ++i) a4(t + i * 4, dm + i * 6);
}

}  // namespace smyrf::kernels::cpu::winograd
