#pragma once

#include <string>
#include <vector>

namespace acceptbench {

// POSIX shell single-quote quoting: the result is one word to any POSIX shell, whatever
// `word` holds (spaces, quotes, $, ;, newlines, ...): 'it'\''s'.
std::string shell_quote(const std::string& word);
// Each word quoted, joined by spaces: a command line that a remote shell splits back into
// exactly these words.
std::string shell_join(const std::vector<std::string>& words);

// Where a process runs: here, in a network namespace of this host, or on another host
// through ssh. A command (an argv) is turned into the argv to exec here by wrap(): local
// runs it directly, netns prefixes `ip netns exec NAME`, ssh passes one quoted command line
// to the remote shell (ssh joins its words with spaces, and the remote shell splits them
// again, so every word is quoted).
struct Launcher {
  enum class Kind { kLocal, kNetns, kSsh };
  Kind kind = Kind::kLocal;
  std::string target;                    // the namespace's name or the ssh host
  std::vector<std::string> ssh_options;  // user options, placed before `--`, e.g. {"-F", "cfg"}
  std::string control_path;              // ssh: a ControlMaster socket to share one connection

  // "local", "netns:NAME", "ssh:HOST" (a bare HOST is ssh:HOST when bare_is_ssh). Throws
  // std::invalid_argument on a bad spec, and on a host or namespace that starts with '-'
  // (ssh would read it as an option).
  static Launcher parse(const std::string& spec, bool bare_is_ssh = false);

  [[nodiscard]] bool remote() const { return kind == Kind::kSsh; }
  [[nodiscard]] bool local() const { return kind == Kind::kLocal; }
  // Shares the PID namespace with the harness (local and netns): /proc/PID is readable here.
  [[nodiscard]] bool same_pids() const { return kind != Kind::kSsh; }
  [[nodiscard]] std::string describe() const;  // the spec it was parsed from

  // The argv that runs `command` there. `keep_stdin`: the command reads the caller's stdin
  // (a server session); otherwise ssh gets -n. `master`: this ssh session opens the shared
  // connection (ControlMaster) that later commands reuse.
  [[nodiscard]] std::vector<std::string> wrap(const std::vector<std::string>& command, bool keep_stdin = false,
                                              bool master = false) const;
};

}  // namespace acceptbench
