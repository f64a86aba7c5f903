#include "results.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "sys.hpp"

namespace acceptbench {

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp";
  {
    const int fd = check(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "open " + tmp);
    std::string_view rest = text;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n < 0) {
        ::close(fd);
        throw_errno("write " + tmp);
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::fsync(fd);
    ::close(fd);
  }
  check(::rename(tmp.c_str(), path.c_str()), "rename " + tmp);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read '" + path + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("'" + path + "' is not valid JSON: " + e.what());
  }
}

nlohmann::json load_results(const std::string& path) {
  if (!std::ifstream(path)) throw std::invalid_argument("cannot open results file '" + path + "'");
  nlohmann::json j = read_json_file(path);
  if (j.is_object() && j.value("schema", "") == "acceptbench/1") {
    throw std::invalid_argument("'" + path +
                                "' is an acceptbench/1 results file: its server CPU (10 ms ticks over completed "
                                "connections), context switches (live tasks only) and Jain index (over summed counts) "
                                "mean something else than in " + std::string(kResultsSchema) +
                                "; re-run it with this version to compare");
  }
  if (!j.is_object() || j.value("schema", "") != kResultsSchema) {
    throw std::invalid_argument("'" + path + "' is not an " + std::string(kResultsSchema) + " results file (schema field)");
  }
  if (!j.contains("configs") || !j["configs"].is_array()) {
    throw std::invalid_argument("'" + path + "' has no configs array");
  }
  return j;
}

ResultsFile::ResultsFile(std::string path, nlohmann::json env, const std::string& run_id, bool resume)
    : path_(std::move(path)) {
  if (resume && std::filesystem::exists(path_)) {
    doc_ = load_results(path_);
    return;
  }
  doc_ = {{"schema", kResultsSchema},
          {"run_id", run_id},
          {"created", fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)))},
          {"env", std::move(env)},
          {"configs", nlohmann::json::array()}};
  write();
}

std::optional<ConfigResult> ResultsFile::find(const std::string& key) const {
  for (const auto& c : doc_["configs"]) {
    if (c["config"]["key"] == key) return ConfigResult::from_json(c);
  }
  return std::nullopt;
}

void ResultsFile::put(const ConfigResult& result, const std::string& field, nlohmann::json value) {
  doc_[field] = std::move(value);
  put(result);
}

void ResultsFile::put(const ConfigResult& result) {
  auto& configs = doc_["configs"];
  const std::string key = result.key();
  for (auto& c : configs) {
    if (c["config"]["key"] == key) {
      c = result.to_json();
      write();
      return;
    }
  }
  configs.push_back(result.to_json());
  write();
}

void ResultsFile::set(const std::string& field, nlohmann::json value) {
  doc_[field] = std::move(value);
  write();
}

void ResultsFile::write() const { write_file_atomically(path_, doc_.dump() + "\n"); }

}  // namespace acceptbench
