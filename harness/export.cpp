#include "export.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace acceptbench {

namespace {

constexpr const char* kLatencyKinds[] = {"connect", "ttfb", "total", "total_uncorrected"};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A JSON scalar as CSV text: numbers in full precision, null and absent as empty.
std::string scalar(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return v.dump();
}

const nlohmann::json& at_path(const nlohmann::json& j, std::initializer_list<const char*> path) {
  static const nlohmann::json kNull;
  const nlohmann::json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return kNull;
    p = &(*p)[k];
  }
  return *p;
}

std::string latency_us(const nlohmann::json& rep, const char* kind, double p) {
  const auto& h = at_path(rep, {"client", "latency_ns", kind});
  if (h.is_null()) return "";
  const Histogram hist = Histogram::from_json(h);
  if (hist.count() == 0) return "";  // no samples (or a file stripped of its buckets)
  return fmt::format("{}", static_cast<double>(p < 0 ? hist.max() : hist.percentile(p)) / 1000.0);
}

std::string safe_name(const std::string& key) {
  std::string out = key;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) c = '_';
  return out;
}

}  // namespace

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> kColumns = {
      "run_id", "key", "model", "workload", "mode", "server_threads", "client_threads", "connections", "rate",
      "requests_per_conn", "work_us", "sleep_us", "response_bytes", "close", "duration_s", "repetition", "round", "status",
      "reason", "window_s", "client_connections", "client_requests", "conn_per_s", "req_per_s",
      "server_cpu_us_per_conn", "server_cpu_utilization", "ctx_switches_per_conn", "client_max_thread_utilization",
      "client_saturated", "client_errors", "late_starts", "dropped_starts", "client_late", "start_lateness_p99_us",
      "connect_p99_us", "total_p50_us",
      "total_p90_us", "total_p99_us", "total_p999_us", "total_max_us", "total_uncorrected_p99_us", "passive_opens",
      "listen_overflows", "listen_drops", "crosscheck_ratio", "accepted_in_window", "server_cpu_coarse",
      "machine_cpu_us_per_conn", "client_cpus_busy_fraction", "jain_index", "steal_fraction", "disturbed",
      "achieved_ratio", "late_completions", "unfinished", "drain_s", "overloaded"};
  return kColumns;
}

std::string results_csv(const nlohmann::json& doc) {
  std::string out;
  for (const auto& c : csv_columns()) {
    if (!out.empty()) out += ',';
    out += c;
  }
  out += '\n';
  try {
    const std::string run_id = doc.value("run_id", "");
    for (const auto& config : doc.at("configs")) {
      const auto& cfg = config.at("config");
      int index = 0;
      for (const auto& rep : config.at("repetitions")) {
        const bool ok = rep.value("status", "") == "ok";
        auto measured = [&](const nlohmann::json& v) { return ok ? scalar(v) : std::string(); };
        const std::vector<std::string> row = {
            run_id, scalar(cfg.at("key")), scalar(cfg.at("model")), scalar(at_path(cfg, {"workload"})),
            scalar(at_path(cfg, {"mode"})), scalar(at_path(cfg, {"server_threads"})),
            scalar(at_path(cfg, {"client_threads"})), scalar(at_path(cfg, {"connections"})),
            scalar(at_path(cfg, {"rate"})), scalar(at_path(cfg, {"requests_per_conn"})),
            scalar(at_path(cfg, {"work_us"})), scalar(at_path(cfg, {"sleep_us"})),
            scalar(at_path(cfg, {"response_bytes"})), scalar(at_path(cfg, {"close"})),
            scalar(at_path(cfg, {"duration_s"})), std::to_string(index++), scalar(at_path(rep, {"round"})),
            rep.value("status", ""),
            rep.value("reason", ""), measured(at_path(rep, {"client", "window_s"})),
            measured(at_path(rep, {"client", "connections"})), measured(at_path(rep, {"client", "requests"})),
            measured(at_path(rep, {"derived", "conn_per_s"})), measured(at_path(rep, {"derived", "req_per_s"})),
            measured(at_path(rep, {"derived", "server_cpu_us_per_conn"})),
            measured(at_path(rep, {"derived", "server_cpu_utilization"})),
            measured(at_path(rep, {"derived", "ctx_switches_per_conn"})),
            measured(at_path(rep, {"derived", "client_max_thread_utilization"})),
            measured(at_path(rep, {"derived", "client_saturated"})),
            measured(at_path(rep, {"client", "errors", "total"})), measured(at_path(rep, {"client", "late_starts"})),
            measured(at_path(rep, {"client", "dropped_starts"})), measured(at_path(rep, {"derived", "client_late"})),
            measured(at_path(rep, {"derived", "start_lateness_p99_us"})), ok ? latency_us(rep, "connect", 99) : "",
            ok ? latency_us(rep, "total", 50) : "", ok ? latency_us(rep, "total", 90) : "",
            ok ? latency_us(rep, "total", 99) : "", ok ? latency_us(rep, "total", 99.9) : "",
            ok ? latency_us(rep, "total", -1) : "", ok ? latency_us(rep, "total_uncorrected", 99) : "",
            measured(at_path(rep, {"kernel", "Tcp.PassiveOpens"})),
            measured(at_path(rep, {"kernel", "TcpExt.ListenOverflows"})),
            measured(at_path(rep, {"kernel", "TcpExt.ListenDrops"})),
            measured(at_path(rep, {"derived", "crosscheck", "ratio"})),
            measured(at_path(rep, {"derived", "accepted_in_window"})),
            measured(at_path(rep, {"derived", "server_cpu_coarse"})),
            measured(at_path(rep, {"derived", "machine_cpu_us_per_conn"})),
            measured(at_path(rep, {"derived", "client_cpus_busy_fraction"})),
            measured(at_path(rep, {"derived", "jain_index"})), measured(at_path(rep, {"derived", "steal_fraction"})),
            measured(at_path(rep, {"derived", "disturbed"})), measured(at_path(rep, {"derived", "achieved_ratio"})),
            measured(at_path(rep, {"derived", "late_completions"})), measured(at_path(rep, {"derived", "unfinished"})),
            measured(at_path(rep, {"derived", "drain_s"})), measured(at_path(rep, {"derived", "overloaded"}))};
        for (std::size_t i = 0; i < row.size(); ++i) {
          if (i) out += ',';
          out += csv_field(row[i]);
        }
        out += '\n';
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed results: ") + e.what());
  }
  return out;
}

std::string hgrm_text(const Histogram& h, double unit_ns) {
  std::string out = fmt::format("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
  const std::uint64_t n = h.count();
  auto value = [&](std::size_t bucket) {
    const std::uint64_t top = Histogram::bucket_low(bucket) + Histogram::bucket_width(bucket) - 1;
    return static_cast<double>(std::clamp(top, h.min(), h.max())) / unit_ns;
  };
  // The levels: HdrHistogram's (5 ticks per half of the remaining distance to 100%) and the
  // summary's own, merged in order.
  std::vector<double> levels;
  for (double level = 0; level < 100;) {
    levels.push_back(std::round(level * 1e9) / 1e9);  // 90, not 89.99999999999997
    const double half_distances = std::floor(std::log2(100.0 / (100.0 - level))) + 1;
    level += 100.0 / (5 * std::pow(2.0, half_distances));
    if (100.0 - level < 1e-9) break;
  }
  for (const double p : {50.0, 90.0, 99.0, 99.9, 99.99}) levels.push_back(p);
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end(), [](double a, double b) { return std::abs(a - b) < 1e-9; }),
               levels.end());
  std::vector<std::pair<std::size_t, std::uint64_t>> nonzero;  // bucket, cumulative count
  {
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < Histogram::kBucketCount && seen < n; ++i) {
      const std::uint64_t c = h.bucket_count(i);
      if (c) nonzero.emplace_back(i, seen += c);
    }
  }
  std::size_t at = 0;
  for (const double level : levels) {
    if (n == 0) break;
    // The same rank as Histogram::percentile, so a level's bucket is the summary's.
    const std::uint64_t rank = Histogram::rank_of(level, n);
    while (nonzero[at].second < rank) ++at;
    out += fmt::format("{:12.6f} {:2.12f} {:10d} {:14.2f}\n", value(nonzero[at].first), level / 100.0, nonzero[at].second,
                       1.0 / (1.0 - level / 100.0));
    if (nonzero[at].second == n) break;  // the last bucket: HdrHistogram ends with the 100% line
  }
  if (n) out += fmt::format("{:12.6f} {:2.12f} {:10d}\n", value(nonzero.back().first), 1.0, n);
  // Standard deviation from bucket midpoints, as HdrHistogram computes it.
  double var = 0;
  const double mean_ns = h.mean();
  for (std::size_t i = 0; i < Histogram::kBucketCount; ++i) {
    if (const std::uint64_t c = h.bucket_count(i)) {
      const double mid = static_cast<double>(Histogram::bucket_low(i)) + static_cast<double>(Histogram::bucket_width(i) - 1) / 2;
      var += static_cast<double>(c) * (mid - mean_ns) * (mid - mean_ns);
    }
  }
  const double stddev = n ? std::sqrt(var / static_cast<double>(n)) : 0.0;
  // HdrHistogram's equivalent structure: 256 sub-buckets (exact below 256), 29 buckets to 2^36.
  out += fmt::format("#[Mean    = {:12.6f}, StdDeviation   = {:12.6f}]\n", mean_ns / unit_ns, stddev / unit_ns);
  out += fmt::format("#[Max     = {:12.6f}, Total count    = {:12d}]\n", static_cast<double>(h.max()) / unit_ns, n);
  out += fmt::format("#[Buckets = {:12d}, SubBuckets     = {:12d}]\n",
                     Histogram::kMaxExponent - Histogram::kSubBucketBits + 1, 2 * Histogram::kSubBuckets);
  return out;
}

std::vector<HgrmFile> results_hgrm(const nlohmann::json& doc, double unit_ns) {
  std::vector<HgrmFile> files;
  std::set<std::string> names;
  try {
    for (const auto& config : doc.at("configs")) {
      Histogram merged[std::size(kLatencyKinds)];
      int ok = 0;
      for (const auto& rep : config.at("repetitions")) {
        if (rep.value("status", "") != "ok") continue;
        ++ok;
        for (std::size_t k = 0; k < std::size(kLatencyKinds); ++k)
          merged[k].merge(Histogram::from_json(rep.at("client").at("latency_ns").at(kLatencyKinds[k])));
      }
      if (ok == 0) continue;
      const std::string base = safe_name(config.at("config").at("key").get<std::string>());
      for (std::size_t k = 0; k < std::size(kLatencyKinds); ++k) {
        if (merged[k].count() == 0) continue;  // no samples of this kind: nothing to plot
        std::string name = base + "." + kLatencyKinds[k] + ".hgrm";
        if (!names.insert(name).second) throw std::invalid_argument("two configurations export to " + name);
        files.push_back({std::move(name), hgrm_text(merged[k], unit_ns)});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed results: ") + e.what());
  }
  return files;
}

}  // namespace acceptbench
