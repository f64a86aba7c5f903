#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "summary.hpp"

namespace acceptbench {

inline constexpr const char* kResultsSchema = "acceptbench/2";

// A results file being written by a sweep: every finished repetition is written at once,
// atomically (a temporary file, fsync, rename), so a crash or a kill loses only the
// repetition in progress and the file is always valid JSON.
class ResultsFile {
 public:
  // Starts a new document, or with `resume` continues an existing one (its env is kept).
  ResultsFile(std::string path, nlohmann::json env, const std::string& run_id, bool resume);

  // The configuration with this key, or nullopt; throws std::invalid_argument when it is
  // malformed.
  [[nodiscard]] std::optional<ConfigResult> find(const std::string& key) const;
  // Adds or replaces the configuration with the same key, then writes the file.
  void put(const ConfigResult& result);
  // The same, also setting a top-level field, in one atomic write (a sweep saves each
  // repetition with the execution record that names it).
  void put(const ConfigResult& result, const std::string& field, nlohmann::json value);
  void set(const std::string& field, nlohmann::json value);  // a top-level field
  [[nodiscard]] const nlohmann::json& doc() const { return doc_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  void write() const;

 private:
  std::string path_;
  nlohmann::json doc_;
};

// Reads and checks a results file; throws std::invalid_argument with a clear message if it
// is missing, not JSON, or not acceptbench/2 (an acceptbench/1 file is refused
// with the reason: its CPU, context switches and Jain index were measured differently).
nlohmann::json load_results(const std::string& path);

// The JSON in a file; throws std::invalid_argument "cannot read 'PATH'" or "'PATH' is not
// valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

// Writes text to path atomically.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace acceptbench
