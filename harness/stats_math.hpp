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

// Two-sided Mann-Whitney U test of x against y. Exact distribution (no ties, both sizes
// <= 20), else the normal approximation with tie correction (Boost.Math).
struct MannWhitney {
  double u = 0;          // U of x
  double p_value = 1;
  bool exact = false;
};
MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y);

// Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 = perfectly even, 1/n = one takes all.
double jain_index(const std::vector<double>& x);

}  // namespace acceptbench::stats
