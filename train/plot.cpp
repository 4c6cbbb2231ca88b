#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/png.h"

namespace smyrf::train {
namespace {

constexpr int64_t kMargin = 40;  // room for the range labels

// 3x5 glyphs, one row per 3-bit group (MSB left): digits, '.', '-', 'e', '+'.
const char* kGlyphChars = "0123456789.-e+";
const uint16_t kGlyphs[] = {
    0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9, 0x79CF, 0x79EF,
    0x7249, 0x7BEF, 0x7BCF, 0x0002, 0x01C0, 0x79E7, 0x05D0,
};

struct Canvas {
  Raster& r;
  void set(int64_t x, int64_t y, std::array<uint8_t, 3> c) {
    if (x < 0 || y < 0 || x >= r.width || y >= r.height) return;
    uint8_t* p = &r.rgb[(y * r.width + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
  // Bresenham, two pixels thick so curves stay visible after downscaling
  void line(int64_t x0, int64_t y0, int64_t x1, int64_t y1, std::array<uint8_t, 3> c) {
    const int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int64_t sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int64_t err = dx + dy;
    for (;;) {
      set(x0, y0, c), set(x0, y0 + 1, c);
      if (x0 == x1 && y0 == y1) break;
      const int64_t e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // Text in the 3x5 font scaled by 2; characters outside the font are skipped.
  void text(int64_t x, int64_t y, const std::string& s) {
    for (char ch : s) {
      const char* f = std::strchr(kGlyphChars, ch);
      if (f && ch) {
        const uint16_t g = kGlyphs[f - kGlyphChars];
        for (int row = 0; row < 5; ++row)
          for (int col = 0; col < 3; ++col)
            if (g >> (14 - row * 3 - col) & 1)
              for (int a = 0; a < 2; ++a)
                for (int b = 0; b < 2; ++b) set(x + col * 2 + a, y + row * 2 + b, {0, 0, 0});
      }
      x += 8;
    }
  }
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

Raster plot_lines(const std::vector<PlotSeries>& series, int64_t width, int64_t height) {
  SMYRF_CHECK(width >= 64 && height >= 64, "plot_lines",
              "image must be at least 64x64, got " << width << "x" << height);
  Raster r{width, height, std::vector<uint8_t>(width * height * 3, 255)};
  Canvas cv{r};
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const PlotSeries& s : series) {
    SMYRF_CHECK(s.x.size() == s.y.size(), "plot_lines",
                "series has " << s.x.size() << " x values but " << s.y.size() << " y values");
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]),
        y1 = std::max(y1, s.y[i]);
  }
  const int64_t L = kMargin, R = width - 10, T = 10, B = height - kMargin;
  const std::array<uint8_t, 3> frame{0, 0, 0};
  cv.line(L, T, R, T, frame), cv.line(R, T, R, B, frame), cv.line(R, B, L, B, frame),
      cv.line(L, B, L, T, frame);
  if (!(x0 <= x1)) return r;  // nothing finite to draw
  // a 5% margin inside the frame; a flat range gets a unit span so nothing divides by zero
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double mx = 0.05 * (x1 - x0), my = 0.05 * (y1 - y0);
  const double ax = x0 - mx, bx = x1 + mx, ay = y0 - my, by = y1 + my;
  auto px = [&](double x) { return L + std::llround((x - ax) / (bx - ax) * double(R - L)); };
  auto py = [&](double y) { return B - std::llround((y - ay) / (by - ay) * double(B - T)); };
  for (const PlotSeries& s : series) {
    bool have = false;
    int64_t lx = 0, ly = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      const int64_t cx = px(s.x[i]), cy = py(s.y[i]);
      if (have)
        cv.line(lx, ly, cx, cy, s.color);
      else
        cv.line(cx, cy, cx, cy, s.color);  // a lone point stays visible
      lx = cx, ly = cy, have = true;
    }
  }
  // ranges: y max top-left, y min bottom-left, x min and max under the axis
  cv.text(2, py(y1) - 5, fmt(y1));
  cv.text(2, py(y0) - 5, fmt(y0));
  cv.text(px(x0), B + 6, fmt(x0));
  const std::string xs = fmt(x1);
  cv.text(std::min<int64_t>(px(x1), width - 8 * int64_t(xs.size())), B + 6, xs);
  return r;
}

void save_plot(const std::string& path, const std::vector<PlotSeries>& series, int64_t width,
               int64_t height) {
  Raster r = plot_lines(series, width, height);
  data::write_png(path, r.rgb.data(), r.width, r.height, 3);
}

}  // namespace smyrf::train
