#include "stats_math.hpp"

#include <algorithm>
#include <cmath>
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

// Number of ways to reach each U for sizes (m, n): the exact null distribution.
std::vector<double> u_distribution(std::size_t m, std::size_t n) {
  // f[i][j][u] by the recurrence f(m,n,u) = f(m-1,n,u-n) + f(m,n-1,u); rolling over m.
  const std::size_t max_u = m * n;
  std::vector<std::vector<std::vector<double>>> f(m + 1, std::vector<std::vector<double>>(n + 1));
  for (std::size_t i = 0; i <= m; ++i) {
    for (std::size_t j = 0; j <= n; ++j) {
      f[i][j].assign(i * j + 1, 0.0);
      if (i == 0 || j == 0) {
        f[i][j][0] = 1;
        continue;
      }
      for (std::size_t u = 0; u <= i * j; ++u) {
        double ways = 0;
        if (u >= j && u - j <= (i - 1) * j) ways += f[i - 1][j][u - j];
        if (u <= i * (j - 1)) ways += f[i][j - 1][u];
        f[i][j][u] = ways;
      }
    }
  }
  (void)max_u;
  return f[m][n];
}

}  // namespace

MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y) {
  MannWhitney r;
  const std::size_t m = x.size(), n = y.size();
  if (m == 0 || n == 0) return r;
  // Ranks with ties averaged.
  std::vector<std::pair<double, int>> all;
  for (double v : x) all.emplace_back(v, 0);
  for (double v : y) all.emplace_back(v, 1);
  std::sort(all.begin(), all.end());
  std::vector<double> rank(all.size());
  bool ties = false;
  double tie_term = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j + 1 < all.size() && all[j + 1].first == all[i].first) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (std::size_t k = i; k <= j; ++k) rank[k] = avg;
    const auto t = static_cast<double>(j - i + 1);
    if (t > 1) {
      ties = true;
      tie_term += t * t * t - t;
    }
    i = j + 1;
  }
  double rank_sum_x = 0;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].second == 0) rank_sum_x += rank[i];
  const auto dm = static_cast<double>(m), dn = static_cast<double>(n);
  r.u = rank_sum_x - dm * (dm + 1) / 2;
  const double u_min = std::min(r.u, dm * dn - r.u);
  if (!ties && m <= 20 && n <= 20) {
    const std::vector<double> dist = u_distribution(m, n);
    const double total = std::accumulate(dist.begin(), dist.end(), 0.0);
    double tail = 0;
    for (std::size_t u = 0; u <= static_cast<std::size_t>(u_min); ++u) tail += dist[u];
    r.p_value = std::min(1.0, 2.0 * tail / total);
    r.exact = true;
    return r;
  }
  const double N = dm + dn;
  const double mu = dm * dn / 2;
  const double var = dm * dn / 12.0 * ((N + 1) - tie_term / (N * (N - 1)));
  if (var <= 0) return r;  // all values equal
  const double z = (std::abs(r.u - mu) - 0.5) / std::sqrt(var);  // continuity correction
  const boost::math::normal_distribution<double> normal;
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(normal, std::max(0.0, z))));
  return r;
}

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
