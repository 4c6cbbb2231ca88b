// Outputs of the gradient study: the CSV of every measurement, the PNG plots and report.md. Every
// number in the report is computed here from the rows; nothing is written in advance.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "train/grad_study.h"
#include "train/plot.h"
#include "train/run_files.h"

namespace smyrf::train {

namespace {
constexpr const char* kOp = "grad_study";

using Pred = std::function<bool(const StudyRow&)>;

// Mean value of the rows matching p (NaN when none).
double mean_of(const std::vector<StudyRow>& rows, const Pred& p) {
  double s = 0;
  int64_t n = 0;
  for (const StudyRow& r : rows)
    if (p(r) && std::isfinite(r.value)) s += r.value, ++n;
  return n ? s / n : std::nan("");
}

std::string fmt(double v, int prec = 3) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os << std::setprecision(prec) << v;
  return os.str();
}

const char* const kColorNames[] = {"blue", "red",   "green", "purple", "orange",
                                   "cyan", "brown", "pink",  "grey",   "olive"};
const std::array<uint8_t, 3> kColors[] = {
    {31, 119, 180}, {214, 39, 40}, {44, 160, 44},   {148, 103, 189}, {255, 127, 14},
    {23, 190, 207}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}};
constexpr size_t kNumColors = sizeof(kColors) / sizeof(kColors[0]);

// The network of a parameter-gradient row ("G" of "G: attention q"; "" for an LM's groups).
std::string net_of(const std::string& layer) {
  const size_t c = layer.find(": ");
  return c == std::string::npos ? "" : layer.substr(0, c);
}
// k of a "step<k>" stat (steps sort by number, not as text).
int64_t step_number(const std::string& stat) {
  return stat.rfind("step", 0) == 0 ? std::atoll(stat.c_str() + 4) : 0;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Sorted distinct values of a field over the rows matching p.
template <typename T, typename F>
std::vector<T> distinct(const std::vector<StudyRow>& rows, const Pred& p, F field) {
  std::set<T> s;
  for (const StudyRow& r : rows)
    if (p(r)) s.insert(field(r));
  return {s.begin(), s.end()};
}

// One metric's (x, mean over heads) line for rows of one sweep, grouped by x.
PlotSeries line(const std::vector<StudyRow>& rows, const Pred& p,
                const std::function<double(const StudyRow&)>& x, size_t color) {
  PlotSeries s;
  s.color = kColors[color % kNumColors];
  for (double xv : distinct<double>(rows, p, x)) {
    s.x.push_back(xv);
    s.y.push_back(mean_of(rows, [&](const StudyRow& r) { return p(r) && x(r) == xv; }));
  }
  return s;
}
}  // namespace

void write_csv(const std::string& path, const std::vector<StudyRow>& rows) {
  std::ostringstream os;
  os << "sweep,source,layer,batch,head,n,d,n_hashes,q_cluster,k_cluster,budget,temperature,"
        "duplicates,n_seeds,metric,stat,value\n";
  os << std::setprecision(10);
  for (const StudyRow& r : rows)
    os << r.sweep << ',' << csv_field(r.source) << ',' << csv_field(r.layer) << ',' << r.batch
       << ',' << r.head << ',' << r.n << ',' << r.d << ',' << r.n_hashes << ',' << r.q_cluster
       << ',' << r.k_cluster << ',' << r.budget << ',' << r.temperature << ',' << r.duplicates
       << ',' << r.n_seeds << ',' << r.metric << ',' << r.stat << ',' << r.value << '\n';
  write_file_atomic(path, os.str(), kOp);
}

std::vector<std::string> write_report(const std::string& dir, const std::vector<StudyRow>& rows,
                                      const StudyOptions& o) {
  std::vector<std::string> files;
  const auto sources = distinct<std::string>(
      rows, [](const StudyRow& r) { return r.sweep.rfind("params", 0) != 0; },
      [](const StudyRow& r) { return r.source + "|" + r.layer; });
  auto of_source = [](const std::string& key) {
    return [key](const StudyRow& r) { return r.source + "|" + r.layer == key; };
  };
  auto is = [](const StudyRow& r, const char* sweep, const char* metric, const char* stat) {
    return r.sweep == sweep && r.metric == metric && r.stat == stat;
  };

  // ---- plots ----
  std::string legend_budget, legend_seeds;  // plot.h draws no text: the report names the colours
  auto legend = [](std::string& l, size_t color, const std::string& what) {
    l += std::string(l.empty() ? "" : "; ") + kColorNames[color % kNumColors] + " = " + what;
  };
  {  // relative dq error against the memory budget, one line per (input, n_hashes)
    std::vector<PlotSeries> series;
    size_t color = 0;
    for (const std::string& src : sources) {
      auto in_src = of_source(src);
      for (int64_t h : distinct<int64_t>(
               rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == "budget"; },
               [](const StudyRow& r) { return r.n_hashes; })) {
        legend(legend_budget, color,
               src.substr(0, src.find('|')) + " " + std::to_string(h) + " hash(es)");
        series.push_back(line(
            rows,
            [&, h](const StudyRow& r) {
              return in_src(r) && is(r, "budget", "err_dq", "whole") && r.n_hashes == h;
            },
            [](const StudyRow& r) { return r.budget; }, color++));
      }
    }
    save_plot(run_path(dir, "error_vs_budget.png"), series);
    files.push_back("error_vs_budget.png");
  }
  {  // cosine of dq against mean coverage, every head of every grid/budget configuration
    std::vector<PlotSeries> series;
    std::vector<std::pair<double, double>> pts;
    std::map<std::string, double> cov;
    auto key = [](const StudyRow& r) {
      std::ostringstream k;
      k << r.sweep << r.source << r.layer << r.batch << r.head << r.n_hashes << r.q_cluster
        << r.k_cluster << r.duplicates << r.n_seeds << r.temperature << r.n;
      return k.str();
    };
    for (const StudyRow& r : rows)
      if (r.metric == "coverage" && r.stat == "mean") cov[key(r)] = r.value;
    for (const StudyRow& r : rows)
      if (r.metric == "cos_dq" && r.stat == "whole" && (r.sweep == "grid" || r.sweep == "budget"))
        if (cov.count(key(r))) pts.emplace_back(cov[key(r)], r.value);
    // scatter drawn as short horizontal marks (plot.h draws lines only)
    for (auto& [x, y] : pts) {
      PlotSeries s;
      s.x = {x - 0.004, x + 0.004};
      s.y = {y, y};
      series.push_back(s);
    }
    save_plot(run_path(dir, "cosine_vs_coverage.png"), series);
    files.push_back("cosine_vs_coverage.png");
  }
  {  // bias (seed-averaged gradient's error) and variance against the number of seeds
    std::vector<PlotSeries> series;
    size_t color = 0;
    for (const std::string& src : sources) {
      auto in_src = of_source(src);
      for (const char* m : {"bias_err", "variance"}) {
        legend(legend_seeds, color, src.substr(0, src.find('|')) + " " + m);
        series.push_back(line(
            rows, [&](const StudyRow& r) { return in_src(r) && is(r, "seeds", m, "value"); },
            [](const StudyRow& r) { return static_cast<double>(r.n_seeds); }, color++));
      }
    }
    save_plot(run_path(dir, "bias_variance_vs_seeds.png"), series);
    files.push_back("bias_variance_vs_seeds.png");
  }

  // ---- report ----
  std::ostringstream md;
  md << "# Gradient study: SMYRF against dense attention\n\n"
     << "SMYRF's gradient is exact for the clustered function with the clusters held fixed; "
        "these are its distances to the dense gradient on the same inputs. Errors are relative "
        "(|g_smyrf - g_dense| / |g_dense|) over a whole head; cosines likewise; means over "
        "heads. "
        "Seed "
     << o.seed << ". "
     << (o.device == "cuda"
             ? "Device: CUDA. The dense and SMYRF ops ran in float32 on the GPU on inputs "
               "rounded to float32; the metrics are float64 on the host (captures and parameter "
               "gradients ran on the CPU). Float32 rounding moves errors by about 1e-6."
         : o.float32_inputs ? "Device: CPU, float64 ops on inputs rounded to float32."
                            : "Device: CPU, float64.")
     << " Every number below is computed from measurements.csv (" << rows.size() << " rows).\n\n"
     << "Plots: error_vs_budget.png (dq error against n_hashes x Ck / Nk, one line per input and "
        "n_hashes), cosine_vs_coverage.png (each head of each configuration), "
        "bias_variance_vs_seeds.png (per input: bias, then variance).\n\n"
     << "Colours of error_vs_budget.png: " << legend_budget << ".\n\n"
     << "Colours of bias_variance_vs_seeds.png: " << legend_seeds << ".\n\n";
  for (const std::string& src : sources) {
    auto in_src = of_source(src);
    md << "## " << src.substr(0, src.find('|'))
       << (src.find("|synthetic") == std::string::npos
               ? " (layer " + src.substr(src.find('|') + 1) + ")"
               : "")
       << "\n\n";
    // equal budgets: the best number of hashes per budget
    for (double b : distinct<double>(
             rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == "budget"; },
             [](const StudyRow& r) { return r.budget; })) {
      double best = INFINITY, worst = -INFINITY;
      int64_t hb = 0, hw = 0;
      for (int64_t h : distinct<int64_t>(
               rows,
               [&](const StudyRow& r) { return in_src(r) && r.sweep == "budget" && r.budget == b; },
               [](const StudyRow& r) { return r.n_hashes; })) {
        const double e = mean_of(rows, [&](const StudyRow& r) {
          return in_src(r) && is(r, "budget", "err_dq", "whole") && r.budget == b &&
                 r.n_hashes == h;
        });
        if (e < best) best = e, hb = h;
        if (e > worst) worst = e, hw = h;
      }
      md << "- Budget " << fmt(b) << ": lowest dq error " << fmt(best) << " with " << hb
         << " hash(es), highest " << fmt(worst) << " with " << hw << ".\n";
    }
    // grid: n_hashes trend at the middle cluster size
    const auto cks = distinct<int64_t>(
        rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == "grid"; },
        [](const StudyRow& r) { return r.k_cluster; });
    if (!cks.empty()) {
      const int64_t ck = cks[cks.size() / 2];
      md << "- Grid at Ck " << ck
         << ", by n_hashes (dq error / dk error / dv error / output error / mean coverage):";
      for (int64_t h : distinct<int64_t>(
               rows,
               [&](const StudyRow& r) {
                 return in_src(r) && r.sweep == "grid" && r.k_cluster == ck;
               },
               [](const StudyRow& r) { return r.n_hashes; })) {
        auto v = [&](const char* m, const char* st) {
          return fmt(mean_of(rows, [&](const StudyRow& r) {
            return in_src(r) && is(r, "grid", m, st) && r.k_cluster == ck && r.n_hashes == h;
          }));
        };
        md << " " << h << ": " << v("err_dq", "whole") << " / " << v("err_dk", "whole") << " / "
           << v("err_dv", "whole") << " / " << v("err_out", "whole") << " / "
           << v("coverage", "mean") << ";";
      }
      md << "\n";
      const double p50 = mean_of(
          rows, [&](const StudyRow& r) { return in_src(r) && is(r, "grid", "err_dq", "p50"); });
      const double p90 = mean_of(
          rows, [&](const StudyRow& r) { return in_src(r) && is(r, "grid", "err_dq", "p90"); });
      md << "- Over tokens (grid average): per-query dq error median " << fmt(p50)
         << ", 90th percentile " << fmt(p90) << ".\n";
      const double nog = mean_of(rows, [&](const StudyRow& r) {
        return in_src(r) && is(r, "grid", "keys_no_grad", "value");
      });
      md << "- Keys receiving no gradient (grid average): " << fmt(100 * nog) << "%.\n";
    }
    const double corr = mean_of(rows, [&](const StudyRow& r) {
      return in_src(r) && (r.sweep == "grid" || r.sweep == "budget") &&
             r.metric == "corr_coverage_err_dq";
    });
    md << "- Correlation over queries between covered dense mass and dq error (mean over heads "
          "and "
          "configurations): "
       << fmt(corr) << (corr < -0.3 ? " (less coverage, more error)" : "") << ".\n";
    // temperature and length sweeps
    for (const char* sw : {"temperature", "length"}) {
      auto xs = distinct<double>(
          rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == sw; },
          [&](const StudyRow& r) { return std::string(sw) == "length" ? r.n : r.temperature; });
      if (xs.empty()) continue;
      md << "- By " << sw << " (n_hashes 2, Ck N/8; dq error / coverage):";
      for (double x : xs) {
        auto v = [&](const char* m, const char* st) {
          return fmt(mean_of(rows, [&](const StudyRow& r) {
            return in_src(r) && is(r, sw, m, st) &&
                   (std::string(sw) == "length" ? r.n == x : r.temperature == x);
          }));
        };
        md << " " << fmt(x) << ": " << v("err_dq", "whole") << " / " << v("coverage", "mean")
           << ";";
      }
      md << "\n";
    }
    // duplicates
    for (int64_t h : distinct<int64_t>(
             rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == "duplicates"; },
             [](const StudyRow& r) { return r.n_hashes; })) {
      auto v = [&](const char* dup) {
        return mean_of(rows, [&](const StudyRow& r) {
          return in_src(r) && is(r, "duplicates", "err_dq", "whole") && r.n_hashes == h &&
                 r.duplicates == dup;
        });
      };
      md << "- " << h << " hashes: dq error multiset " << fmt(v("multiset")) << " vs set "
         << fmt(v("set")) << ".\n";
    }
    // multiplicity histogram at the reference configuration
    {
      auto bins = distinct<std::string>(
          rows,
          [&](const StudyRow& r) {
            return in_src(r) && is(r, "seeds", "mult_hist", r.stat.c_str()) && r.n_seeds == 1;
          },
          [](const StudyRow& r) { return r.stat; });
      if (!bins.empty()) {
        md << "- Multiplicity histogram (share of query-key pairs co-clustered in M rounds, 1 "
              "seed):";
        for (const std::string& b : bins)
          md << " M=" << b << ": " << fmt(mean_of(rows, [&](const StudyRow& r) {
            return in_src(r) && r.sweep == "seeds" && r.metric == "mult_hist" && r.stat == b &&
                   r.n_seeds == 1;
          }));
        md << ".\n";
      }
    }
    // bias and variance
    auto seeds = distinct<int64_t>(
        rows, [&](const StudyRow& r) { return in_src(r) && r.sweep == "seeds"; },
        [](const StudyRow& r) { return r.n_seeds; });
    if (!seeds.empty()) {
      auto v = [&](const char* m, int64_t s) {
        return mean_of(rows, [&](const StudyRow& r) {
          return in_src(r) && is(r, "seeds", m, "value") && r.n_seeds == s;
        });
      };
      md << "- Seeds: one seed's gradient error " << fmt(v("bias_err", seeds.front()))
         << "; averaging " << seeds.back() << " seeds leaves a bias of "
         << fmt(v("bias_err", seeds.back())) << " (cosine " << fmt(v("bias_cos", seeds.back()))
         << ") with variance across seeds " << fmt(v("variance", seeds.back()))
         << " (relative to |g_dense|^2). "
         << (v("bias_err", seeds.back()) > 0.5 * v("bias_err", seeds.front())
                 ? "Most of the error is bias: more seeds do not remove it."
                 : "Most of the error is variance: averaging seeds removes it.")
         << "\n";
    }
    md << "\n";
  }
  // parameter level: one plot and one findings block per network (LM: one, GAN: G and D)
  const auto nets = distinct<std::string>(
      rows, [](const StudyRow& r) { return r.sweep == "params"; },
      [](const StudyRow& r) { return net_of(r.layer); });
  if (!nets.empty()) {
    md << "## Parameter gradients over a short run\n\n"
       << "At each step, on one batch, the gradient of every parameter with every attention layer "
          "SMYRF against the gradient with every attention layer dense; the run then moves on "
          "the dense gradient (LM: SGD; GAN: one D step on the discriminator's hinge loss, then "
          "one G step on the generator's, Adam with the run's settings, spectral-norm and BN "
          "state restored between the two passes). Per parameter group: cosine and relative "
          "error |g_smyrf - g_dense| / |g_dense|, mean over the steps, then per step.\n\n";
  }
  for (const std::string& net : nets) {
    auto in_net = [net](const StudyRow& r) {
      return r.sweep == "params" && net_of(r.layer) == net;
    };
    std::vector<std::string> steps =
        distinct<std::string>(rows, in_net, [](const StudyRow& r) { return r.stat; });
    std::sort(steps.begin(), steps.end(), [](const std::string& a, const std::string& b) {
      return step_number(a) < step_number(b);
    });
    // groups in the order the rows list them ("all parameters" last)
    std::vector<std::string> groups;
    for (const StudyRow& r : rows)
      if (in_net(r) && std::find(groups.begin(), groups.end(), r.layer) == groups.end())
        groups.push_back(r.layer);
    const std::string file =
        "param_cosine_vs_step" + (net.empty() ? std::string() : "_" + net) + ".png";
    std::string legend_params;
    std::vector<PlotSeries> series;
    auto is_scalar = [](const std::string& group) {
      // the gain is one number: its cosine is only the sign agreement (+1 or -1)
      return group.find("attention gain") != std::string::npos;
    };
    for (const std::string& grp : groups) {
      if (is_scalar(grp)) continue;  // a -1 would squash every other line against the top
      const size_t color = series.size();
      legend(legend_params, color, grp);
      series.push_back(line(
          rows,
          [&](const StudyRow& r) { return in_net(r) && r.layer == grp && r.metric == "cos_grad"; },
          [](const StudyRow& r) { return static_cast<double>(step_number(r.stat)); }, color));
    }
    save_plot(run_path(dir, file), series);
    files.push_back(file);
    md << "### " << (net.empty() ? std::string("Model") : net) << "\n\n"
       << (net == "G"   ? "Gradients of the generator's hinge loss -mean(D(G(z, y), y)), D frozen. "
           : net == "D" ? "Gradients of the discriminator's hinge loss on G's fakes (G's "
                          "attention in the same mode as D's) and a real batch. "
                        : "")
       << "Plot " << file << " (cosine against step; the gain is left out): " << legend_params
       << ".\n\n";
    std::string worst;
    double worst_cos = INFINITY;
    for (const std::string& grp : groups) {
      auto of = [&](const char* m, const std::string& st) {
        return mean_of(rows, [&](const StudyRow& r) {
          return in_net(r) && r.layer == grp && r.metric == m && (st.empty() || r.stat == st);
        });
      };
      const double cos = of("cos_grad", ""), err = of("err_grad", "");
      const bool scalar = is_scalar(grp);
      if (!scalar && cos < worst_cos) worst_cos = cos, worst = grp;
      md << "- " << grp << ": cosine " << fmt(cos, 4)
         << (scalar ? " (a scalar: sign agreement)" : "") << ", relative error " << fmt(err)
         << " (per step, cosine / error:";
      for (size_t i = 0; i < steps.size(); ++i)
        md << (i ? "; " : " ") << step_number(steps[i]) << ": " << fmt(of("cos_grad", steps[i]), 4)
           << " / " << fmt(of("err_grad", steps[i]));
      md << ")\n";
    }
    if (!worst.empty())
      md << "- Lowest mean cosine of a tensor group: " << worst << " (" << fmt(worst_cos, 4)
         << ").\n";
    md << "\n";
  }
  {  // every attention parameter on its own (projection weights and biases, the gain)
    const auto names = distinct<std::string>(
        rows, [](const StudyRow& r) { return r.sweep == "params_layer"; },
        [](const StudyRow& r) { return r.layer; });
    if (!names.empty()) {
      md << "Attention parameters one by one (cosine / relative error, mean over the steps):";
      for (const std::string& n : names) {
        auto of = [&](const char* m) {
          return mean_of(rows, [&](const StudyRow& r) {
            return r.sweep == "params_layer" && r.layer == n && r.metric == m;
          });
        };
        md << " " << n << " " << fmt(of("cos_grad"), 4) << " / " << fmt(of("err_grad")) << ";";
      }
      md << "\n\n";
    }
  }
  write_file_atomic(run_path(dir, "report.md"), md.str(), kOp);
  files.push_back("report.md");
  return files;
}

}  // namespace smyrf::train
