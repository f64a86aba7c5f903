#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "launcher.hpp"

namespace acceptbench {

// One host of a run as this process sees it: `hostname`, `kernel`, `cores`, `cpus_allowed`
// (the CPUs this process may run on), `sysctls` (the list collect_env records; net.* are
// those of this process's network namespace).
nlohmann::json collect_host();
// The same for the host (or network namespace) behind `launcher`: here it is collect_host();
// elsewhere `PROBE probe --sysctls` runs it there. Never throws: when the probe fails, the
// record is {"error": why}. `launcher` is added to the record.
nlohmann::json collect_host_via(const Launcher& launcher, const std::string& probe);
// The CPUs of `host` (a collect_host record) this process could run on; empty if unknown.
std::vector<int> cpus_allowed(const nlohmann::json& host);

// The environment block of a results file: what a number needs beside it to be honest.
// `server_cpus`/`client_cpus` are the placement the run uses.
nlohmann::json collect_env(const std::vector<int>& server_cpus, const std::vector<int>& client_cpus);

}  // namespace acceptbench
