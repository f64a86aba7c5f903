#include "stats_math.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>

namespace acceptbench::stats {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double cv(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return m != 0 ? sd / std::abs(m) : 0;
}

Interval median_interval(std::vector<double> v, double level) {
  Interval r;
  if (v.empty()) return r;
  std::sort(v.begin(), v.end());
  const auto n = static_cast<double>(v.size());
  const boost::math::binomial_distribution<double> b(n, 0.5);
  // Coverage of [x_(j), x_(n+1-j)] (1-based) is P(j <= B <= n-j) = 1 - 2 P(B <= j-1).
  std::size_t best_j = 1;
  for (std::size_t j = 1; 2 * j <= v.size(); ++j) {
    const double coverage = 1.0 - 2.0 * boost::math::cdf(b, static_cast<double>(j - 1));
    if (coverage >= level) best_j = j;
    else break;
  }
  r.low = v[best_j - 1];
  r.high = v[v.size() - best_j];
  r.coverage = v.size() == 1 ? 0.0 : 1.0 - 2.0 * boost::math::cdf(b, static_cast<double>(best_j - 1));
  return r;
}

namespace {

// Pooled values sorted, with each value's doubled mid-rank (an integer: 2 * average rank).
struct Ranked {
  std::vector<std::pair<double, int>> all;  // value, group (0 = x, 1 = y)
  std::vector<std::int64_t> rank2;
  double tie_term = 0;                      // sum of t^3 - t over tie groups
};

Ranked rank(const std::vector<double>& x, const std::vector<double>& y) {
  Ranked r;
  for (double v : x) r.all.emplace_back(v, 0);
  for (double v : y) r.all.emplace_back(v, 1);
  std::sort(r.all.begin(), r.all.end());
  r.rank2 = std::vector<std::int64_t>(r.all.size(), 0);
  for (std::size_t i = 0; i < r.all.size();) {
    std::size_t j = i;
    while (j + 1 < r.all.size() && r.all[j + 1].first == r.all[i].first) ++j;
    // ranks i+1 .. j+1 (1-based): doubled average = i + j + 2
    for (std::size_t k = i; k <= j; ++k) r.rank2[k] = static_cast<std::int64_t>(i + j + 2);
    const auto t = static_cast<double>(j - i + 1);
    r.tie_term += t * t * t - t;
    i = j + 1;
  }
  return r;
}

// ways[s] = number of m-subsets of the pooled values whose doubled ranks sum to s.
std::vector<double> rank_sum_distribution(const std::vector<std::int64_t>& rank2, std::size_t m) {
  std::int64_t max_sum = 0;
  for (auto v : rank2) max_sum += v;
  const auto width = static_cast<std::size_t>(max_sum + 1);
  std::vector<std::vector<double>> f(m + 1, std::vector<double>(width, 0.0));
  f[0][0] = 1;
  std::size_t seen = 0;
  for (const auto v : rank2) {
    ++seen;
    const auto step = static_cast<std::size_t>(v);
    for (std::size_t k = std::min(m, seen); k >= 1; --k) {
      auto& to = f[k];
      const auto& from = f[k - 1];
      for (std::size_t s = width; s-- > step;) to[s] += from[s - step];
    }
  }
  return f[m];
}

}  // namespace

double min_p_value(std::size_t m, std::size_t n) {
  if (m == 0 || n == 0) return 1;
  double c = 1;  // C(m+n, m)
  for (std::size_t i = 1; i <= m; ++i) c = c * static_cast<double>(n + i) / static_cast<double>(i);
  return std::min(1.0, 2.0 / c);
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> out(p.size());
  double running = 0;
  const std::size_t k = p.size();
  for (std::size_t i = 0; i < k; ++i) {
    running = std::max(running, std::min(1.0, static_cast<double>(k - i) * p[order[i]]));
    out[order[i]] = running;
  }
  return out;
}

MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y) {
  MannWhitney r;
  const std::size_t m = x.size(), n = y.size();
  if (m == 0 || n == 0) return r;
  const Ranked ranked = rank(x, y);
  std::int64_t sum2_x = 0;
  for (std::size_t i = 0; i < ranked.all.size(); ++i)
    if (ranked.all[i].second == 0) sum2_x += ranked.rank2[i];
  const auto dm = static_cast<double>(m), dn = static_cast<double>(n);
  r.u = static_cast<double>(sum2_x) / 2.0 - dm * (dm + 1) / 2;
  if (m + n <= 100) {
    // Two-sided: splits whose rank sum is at least as far from its mean as the one observed.
    const std::vector<double> ways = rank_sum_distribution(ranked.rank2, m);
    const auto mean2 = static_cast<std::int64_t>(m * (m + n + 1));  // E[doubled rank sum], integral
    const std::int64_t dev = std::abs(sum2_x - mean2);
    double total = 0, tail = 0;
    for (std::size_t s = 0; s < ways.size(); ++s) {
      if (ways[s] == 0) continue;
      total += ways[s];
      if (std::abs(static_cast<std::int64_t>(s) - mean2) >= dev) tail += ways[s];
    }
    r.p_value = total > 0 ? std::min(1.0, tail / total) : 1.0;
    r.exact = true;
    return r;
  }
  const double N = dm + dn;
  const double mu = dm * dn / 2;
  const double var = dm * dn / 12.0 * ((N + 1) - ranked.tie_term / (N * (N - 1)));
  if (var <= 0) return r;  // all values equal
  const double z = (std::abs(r.u - mu) - 0.5) / std::sqrt(var);  // continuity correction
  const boost::math::normal_distribution<double> normal;
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(normal, std::max(0.0, z))));
  return r;
}

SignedRank signed_rank(const std::vector<double>& d) {
  SignedRank r;
  std::vector<double> a;  // |d|, zeros dropped
  std::vector<bool> positive;
  std::vector<std::size_t> order;
  for (double v : d) {
    if (v == 0 || std::isnan(v)) continue;
    a.push_back(std::abs(v));
    positive.push_back(v > 0);
  }
  r.n = a.size();
  if (r.n == 0) return r;
  order.resize(r.n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return a[x] < a[y]; });
  // Doubled mid-ranks (integers), and the tie term for the normal approximation.
  std::vector<std::int64_t> rank2(r.n);
  double tie_term = 0;
  for (std::size_t i = 0; i < r.n;) {
    std::size_t j = i;
    while (j + 1 < r.n && a[order[j + 1]] == a[order[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) rank2[order[k]] = static_cast<std::int64_t>(i + j + 2);
    const auto t = static_cast<double>(j - i + 1);
    tie_term += t * t * t - t;
    i = j + 1;
  }
  std::int64_t obs2 = 0, total2 = 0;
  for (std::size_t i = 0; i < r.n; ++i) {
    total2 += rank2[i];
    if (positive[i]) obs2 += rank2[i];
  }
  r.w_plus = static_cast<double>(obs2) / 2.0;
  // Under the null every rank is positive or negative with probability 1/2: the doubled sum
  // of the positive ranks is symmetric about total2 / 2. Compare doubled deviations (2 * sum
  // - total) to stay in integers.
  const std::int64_t dev = std::abs(2 * obs2 - total2);
  if (r.n <= 200) {
    std::vector<double> prob(static_cast<std::size_t>(total2) + 1, 0.0);
    prob[0] = 1;
    std::int64_t reach = 0;
    for (const auto v : rank2) {
      reach += v;
      for (auto s = reach; s >= 0; --s) {
        const auto us = static_cast<std::size_t>(s);
        prob[us] = 0.5 * prob[us] + (s >= v ? 0.5 * prob[us - static_cast<std::size_t>(v)] : 0.0);
      }
    }
    double tail = 0;
    for (std::size_t s = 0; s < prob.size(); ++s) {
      if (std::abs(2 * static_cast<std::int64_t>(s) - total2) >= dev) tail += prob[s];
    }
    r.p_value = std::min(1.0, tail);
    r.exact = true;
    return r;
  }
  const auto n = static_cast<double>(r.n);
  const double mu = n * (n + 1) / 4;
  const double var = n * (n + 1) * (2 * n + 1) / 24 - tie_term / 48;
  if (var <= 0) return r;
  const double z = (std::abs(r.w_plus - mu) - 0.5) / std::sqrt(var);
  const boost::math::normal_distribution<double> normal;
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(normal, std::max(0.0, z))));
  return r;
}

double min_p_value_paired(std::size_t n) { return n == 0 ? 1.0 : std::min(1.0, 2.0 / std::pow(2.0, static_cast<double>(n))); }

double jain_index(const std::vector<double>& x) {
  if (x.empty()) return 0;
  double s = 0, ss = 0;
  for (double v : x) {
    s += v;
    ss += v * v;
  }
  return ss > 0 ? s * s / (static_cast<double>(x.size()) * ss) : 0;
}

}  // namespace acceptbench::stats
