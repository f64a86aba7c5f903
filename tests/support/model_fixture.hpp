#pragma once

// Shared by the model tests: where the binaries are, which models exist, starting one,
// and a bounded load of plain blocking clients.

#include <cstdint>
#include <string>
#include <vector>

#include "process.hpp"

namespace acceptbench::testing {

std::string bin_dir();
// The model ids from bin/models.json (the one list of models), in file order.
std::vector<std::string> model_ids();
bool multi_acceptor(const std::string& model);
// A true/false field of the model's entry in models.json ("max_conns"); false if absent.
bool model_flag(const std::string& model, const std::string& key);

// Starts bin/<model> --port 0 [extra...]; multi-acceptor models get --threads `threads`.
ServerProcess start_model(const std::string& model, int threads = 2, std::vector<std::string> extra = {},
                          int rlimit_nofile = 0);

struct LoadResult {
  int connections = 0;  // connections that completed all their requests
  int ok_responses = 0;
  int failures = 0;
};
// `threads` client threads, each making `conns` connections one after another, each with
// `keep_alive_requests` keep-alive requests and then one "Connection: close" request.
LoadResult drive(std::uint16_t port, int threads, int conns, int keep_alive_requests);

// Sum of one counter over the server's acceptors, from its stats JSON.
std::uint64_t total(const nlohmann::json& stats, const std::string& key);

}  // namespace acceptbench::testing
