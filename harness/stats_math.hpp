#pragma once

#include <cstdint>
#include <vector>

namespace acceptbench::stats {

double median(std::vector<double> v);
double mean(const std::vector<double>& v);
// Coefficient of variation (sample stddev / mean); 0 for fewer than two values.
double cv(const std::vector<double>& v);

// A distribution-free confidence interval for the median from order statistics (the
// binomial(n, 1/2) method): the narrowest symmetric [x_(j), x_(n+1-j)] whose coverage is
// at least `level`; with too few values for that, [min, max] and its true coverage.
struct Interval {
  double low = 0, high = 0;
  double coverage = 0;  // the interval's actual confidence level
};
Interval median_interval(std::vector<double> v, double level = 0.95);

// Two-sided Mann-Whitney U test of x against y. Exact: the permutation distribution of the
// rank sum with ties given their mid-ranks (every split of the pooled values into groups of
// the two sizes equally likely), counted by dynamic programming, for up to 100 values in all;
// beyond that the normal approximation with tie correction (Boost.Math).
struct MannWhitney {
  double u = 0;          // U of x
  double p_value = 1;
  bool exact = false;
};
MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y);

// The smallest two-sided p the exact test can give for sizes m and n (all values distinct
// and the groups fully separated): 2 / C(m+n, m). With ties it can only be larger.
double min_p_value(std::size_t m, std::size_t n);

// Holm's step-down adjustment of a family of p-values (same order): the adjusted p of the
// i-th smallest is max over j <= i of min(1, (k - j + 1) p_(j)). Reject where adjusted < alpha.
std::vector<double> holm_adjust(const std::vector<double>& p);

// Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 = perfectly even, 1/n = one takes all.
double jain_index(const std::vector<double>& x);

}  // namespace acceptbench::stats
