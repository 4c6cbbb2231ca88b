// A tiny line plotter for loss curves: lines rasterised into an RGB buffer and written as a PNG
// with data::write_png. No fonts beyond a 3x5 pixel digit font for the axis range labels.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace smyrf::train {

struct PlotSeries {
  std::vector<double> x, y;  // same length; non-finite points are skipped
  std::array<uint8_t, 3> color{31, 119, 180};
};

// An RGB image (height * width * 3 bytes, row-major).
struct Raster {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Draws the series on shared axes (the data's bounding box with a 5% margin) inside a frame, with
// the x and y ranges printed at the axis ends. Throws smyrf::Error for width or height < 64 or
// mismatched x/y lengths. Empty series are allowed (an empty frame).
Raster plot_lines(const std::vector<PlotSeries>& series, int64_t width = 800, int64_t height = 500);

// plot_lines, then an atomic PNG write to path.
void save_plot(const std::string& path, const std::vector<PlotSeries>& series, int64_t width = 800,
               int64_t height = 500);

}  // namespace smyrf::train
