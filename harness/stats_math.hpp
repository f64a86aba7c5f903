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

// Two-sided Wilcoxon signed-rank test of paired differences d (e.g. log(new/base) of two runs
// made side by side in one round): zeros are dropped, ties get mid-ranks; exact (every sign
// assignment of the ranks equally likely, counted by dynamic programming) for up to 200
// non-zero differences, else the normal approximation with tie correction. Drift shared by the
// two members of a pair cancels, so it decides with fewer rounds than Mann-Whitney.
struct SignedRank {
  double w_plus = 0;    // sum of the ranks of the positive differences
  std::size_t n = 0;    // non-zero differences used
  double p_value = 1;
  bool exact = false;
};
SignedRank signed_rank(const std::vector<double>& d);

// The smallest two-sided p the signed-rank test can give with n non-zero pairs: 2 / 2^n.
double min_p_value_paired(std::size_t n);

// The smallest two-sided p the exact test can give for sizes m and n (all values distinct
// and the groups fully separated): 2 / C(m+n, m). With ties it can only be larger.
double min_p_value(std::size_t m, std::size_t n);

// Holm's step-down adjustment of a family of p-values (same order): the adjusted p of the
// i-th smallest is max over j <= i of min(1, (k - j + 1) p_(j)). Reject where adjusted < alpha.
std::vector<double> holm_adjust(const std::vector<double>& p);

// Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 = perfectly even, 1/n = one takes all.
double jain_index(const std::vector<double>& x);

}  // namespace acceptbench::stats
