// See kernels/cpu/line_writer.h.
#include "kernels/cpu/line_writer.h"

#include "kernels/cpu/row_avx2.h"

namespace smyrf::kernels::cpu::avx2 {

rows::LineWriter* new_line_writer() { return new rows::LineWriter; }

void finish_line_writer(rows::LineWriter* out) {
  if (!out) return;
  out->finish();
  delete out;
}

}  // namespace smyrf::kernels::cpu::avx2
