#include "launcher.hpp"

#include <stdexcept>

namespace acceptbench {

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (const char c : word) {
    if (c == '\'') {
      out += "'\\''";  // close the quote, a quoted quote, open again
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += shell_quote(w);
  }
  return out;
}

Launcher Launcher::parse(const std::string& spec, bool bare_is_ssh) {
  Launcher l;
  auto name_after = [&](std::size_t prefix) {
    std::string name = spec.substr(prefix);
    if (name.empty()) throw std::invalid_argument("'" + spec + "' names no host or namespace");
    if (name.front() == '-') {
      throw std::invalid_argument("'" + spec + "': a host or namespace may not start with '-' (ssh would read it as an option)");
    }
    for (const char c : name) {
      if (c == '\0' || c == '\n' || c == ' ' || c == '\t') throw std::invalid_argument("'" + spec + "': blank in a host name");
    }
    return name;
  };
  if (spec == "local") return l;
  if (spec.starts_with("netns:")) {
    l.kind = Kind::kNetns;
    l.target = name_after(6);
  } else if (spec.starts_with("ssh:")) {
    l.kind = Kind::kSsh;
    l.target = name_after(4);
  } else if (bare_is_ssh && !spec.empty() && spec.find(':') == std::string::npos) {
    l.kind = Kind::kSsh;
    l.target = name_after(0);
  } else {
    throw std::invalid_argument("'" + spec + "' is not local, netns:NAME or ssh:HOST");
  }
  return l;
}

std::string Launcher::describe() const {
  switch (kind) {
    case Kind::kLocal: return "local";
    case Kind::kNetns: return "netns:" + target;
    case Kind::kSsh: return "ssh:" + target;
  }
  return "?";
}

std::vector<std::string> Launcher::wrap(const std::vector<std::string>& command, bool keep_stdin, bool master) const {
  switch (kind) {
    case Kind::kLocal: return command;
    case Kind::kNetns: {
      std::vector<std::string> argv = {"ip", "netns", "exec", target};
      argv.insert(argv.end(), command.begin(), command.end());
      return argv;
    }
    case Kind::kSsh: {
      if (target.empty() || target.front() == '-') throw std::invalid_argument("bad ssh host '" + target + "'");
      std::vector<std::string> argv = {"ssh"};
      if (!keep_stdin) argv.emplace_back("-n");
      argv.insert(argv.end(), {"-o", "BatchMode=yes"});
      if (!control_path.empty()) {
        argv.insert(argv.end(), {"-o", std::string("ControlMaster=") + (master ? "auto" : "no"), "-o",
                                 "ControlPath=" + control_path});
        if (master) argv.insert(argv.end(), {"-o", "ControlPersist=no"});
      }
      argv.insert(argv.end(), ssh_options.begin(), ssh_options.end());
      argv.insert(argv.end(), {"--", target});
      // One word: ssh would join several with spaces anyway, and the remote shell splits
      // the line again; quoting makes it split back into exactly `command`.
      argv.push_back((keep_stdin ? "exec " : "") + shell_join(command));
      return argv;
    }
  }
  return command;
}

}  // namespace acceptbench
