// The row kernels' streaming writer (rows::LineWriter, kernels/cpu/row_avx2.h) for the callers
// built without AVX2 (norm.cpp, softmax.cpp), which hold it by pointer: it is made and freed in
// an AVX2 translation unit (line_writer_avx2.cpp). One per thread, for that thread's consecutive
// rows; finish_line_writer writes its pending tail (plain stores) and frees it (null: nothing).
// The caller fences (streaming_store_fence) afterwards.
#pragma once

namespace smyrf::kernels::cpu::avx2 {
namespace rows {
class LineWriter;
}
rows::LineWriter* new_line_writer();
void finish_line_writer(rows::LineWriter* out);
}  // namespace smyrf::kernels::cpu::avx2
