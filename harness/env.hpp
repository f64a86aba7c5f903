#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace acceptbench {

// The environment block of a results file: what a number needs beside it to be honest.
// `server_cpus`/`client_cpus` are the placement the run uses.
nlohmann::json collect_env(const std::vector<int>& server_cpus, const std::vector<int>& client_cpus);

}  // namespace acceptbench
