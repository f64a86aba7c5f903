#include "cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace acceptbench {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A process's path in the hierarchy of `controller` (v1), or of v2 when controller is
// empty, from /proc/PID/cgroup ("4:memory:/a/b", "0::/c"); this process's by default.
std::optional<std::string> own_path(const std::string& controller, const std::string& pid = "self") {
  const auto text = read_text("/proc/" + pid + "/cgroup");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t a = line.find(':');
    const std::size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path == "/") path.clear();
    if (controller.empty()) {
      if (line.compare(0, a, "0") == 0 && controllers.empty()) return path;
      continue;
    }
    std::istringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) {
      if (c == controller) return path;
    }
  }
  return std::nullopt;
}

std::atomic<int> counter{0};

std::string cgroup_root(const std::string& root_arg) {
  if (!root_arg.empty()) return root_arg;
  const char* env = std::getenv("ACCEPTBENCH_CGROUP_ROOT");
  return env && *env ? env : "/sys/fs/cgroup";
}

// Where the hierarchies are mounted under `root`: create() makes its cgroups there and
// find() looks for them there, so both see the same layout.
struct Mounts {
  std::string v2;       // the whole tree (v2-only host) or the "unified" mount of a hybrid host
  std::string cpuacct;  // v1 cpuacct (ns), preferred where it exists: finer than v2's usage_usec
  std::string memory;   // v1 memory, used where v2's memory controller does not reach
};

Mounts find_mounts(const std::string& root) {
  Mounts m;
  if (exists(root + "/cgroup.controllers")) {
    m.v2 = root;  // v2 only: no v1 hierarchies beside it
    return m;
  }
  if (exists(root + "/unified/cgroup.controllers")) m.v2 = root + "/unified";
  for (const char* mount : {"/cpuacct", "/cpu,cpuacct"}) {
    if (exists(root + mount + "/cpuacct.usage")) {
      m.cpuacct = root + mount;
      break;
    }
  }
  if (exists(root + "/memory/memory.usage_in_bytes")) m.memory = root + "/memory";
  return m;
}

// Cgroups of harnesses that were killed before they could remove theirs: empty ones whose
// harness PID is gone are removed (rmdir fails on a cgroup that still holds a process).
void remove_stale(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    int pid = 0;
    if (std::sscanf(e->d_name, "acceptbench-%d-", &pid) != 1 || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    ::rmdir((parent + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

}  // namespace

ServerCgroup ServerCgroup::create(const std::string& root_arg) {
  ServerCgroup g;
  const std::string root = cgroup_root(root_arg);
  g.name_ = fmt::format("acceptbench-{}-{}", ::getpid(), counter.fetch_add(1));
  std::vector<std::string> failures;
  // Makes hierarchy_mount/<own path>/<name>; returns its path or empty.
  auto make = [&](const std::string& mount, const std::string& controller) -> std::string {
    const auto own = own_path(controller);
    if (!own) {
      failures.push_back(fmt::format("{}: not in /proc/self/cgroup", mount));
      return {};
    }
    remove_stale(mount + *own);
    const std::string dir = mount + *own + "/" + g.name_;
    if (::mkdir(dir.c_str(), 0755) < 0) {
      failures.push_back(fmt::format("mkdir {}: {}", dir, std::strerror(errno)));
      return {};
    }
    const int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      failures.push_back(fmt::format("open {}/cgroup.procs: {}", dir, std::strerror(errno)));
      ::rmdir(dir.c_str());
      return {};
    }
    g.dirs_.push_back(dir);
    g.procs_fds_.push_back(fd);
    return dir;
  };

  g.use_hierarchies(root, make);
  if (g.cpu_file_.empty()) {
    g.why_ = failures.empty() ? fmt::format("no cgroup hierarchy with CPU accounting under {}", root)
                              : fmt::format("no CPU cgroup could be made ({})", failures.front());
    g.remove();  // a memory-only cgroup is of no use alone
  }
  return g;
}

// The files of the hierarchies under `root`, in the cgroup `dir_in` gives for each (made by
// create(), found by find()): v1 cpuacct (ns) preferred for CPU, else v2 cpu.stat; v2
// memory.current where its controller reaches, else v1 memory.
void ServerCgroup::use_hierarchies(const std::string& root, const DirIn& dir_in) {
  const Mounts m = find_mounts(root);
  if (!m.v2.empty()) v2_dir_ = dir_in(m.v2, "");
  if (!m.cpuacct.empty()) {
    if (const std::string dir = dir_in(m.cpuacct, "cpuacct"); !dir.empty()) {
      cpu_file_ = dir + "/cpuacct.usage";
      cpu_source_ = "cgroup-v1-cpuacct";
      cpu_resolution_ns_ = 1;
    }
  }
  if (cpu_file_.empty() && !v2_dir_.empty() && exists(v2_dir_ + "/cpu.stat")) {
    cpu_file_ = v2_dir_ + "/cpu.stat";
    cpu_source_ = "cgroup-v2-cpu.stat";
    cpu_resolution_ns_ = 1000;
  }
  if (!v2_dir_.empty() && exists(v2_dir_ + "/memory.current")) {
    memory_file_ = v2_dir_ + "/memory.current";
    memory_source_ = "cgroup-v2-memory.current";
  } else if (!m.memory.empty()) {
    if (const std::string dir = dir_in(m.memory, "memory"); !dir.empty()) {
      memory_file_ = dir + "/memory.usage_in_bytes";
      memory_source_ = "cgroup-v1-memory";
    }
  }
}

std::optional<pid_t> ServerCgroup::creator_of(const std::string& name) {
  int pid = 0, n = 0, used = 0;
  // Exactly the form create() writes (no signs, blanks, slashes or leading zeros).
  if (std::sscanf(name.c_str(), "acceptbench-%d-%d%n", &pid, &n, &used) != 2 || pid <= 1 || n < 0 ||
      static_cast<std::size_t>(used) != name.size() || name != fmt::format("acceptbench-{}-{}", pid, n)) {
    return std::nullopt;
  }
  return pid;
}

ServerCgroup ServerCgroup::find(const std::string& name, const std::string& root_arg) {
  const auto creator = creator_of(name);
  if (!creator) throw std::invalid_argument("'" + name + "' is not a cgroup name acceptbench makes (acceptbench-PID-N)");
  const std::string pid = std::to_string(*creator);
  ServerCgroup g;
  g.owner_ = false;
  g.name_ = name;
  // The cgroup's folder in a hierarchy, if it is there.
  auto look = [&](const std::string& mount, const std::string& controller) -> std::string {
    const auto own = own_path(controller, pid);
    if (!own) return {};
    const std::string dir = mount + *own + "/" + name;
    if (!exists(dir + "/cgroup.procs")) return {};
    g.dirs_.push_back(dir);
    return dir;
  };
  g.use_hierarchies(cgroup_root(root_arg), look);
  if (g.cpu_file_.empty()) throw std::runtime_error(fmt::format("no cgroup {} with CPU accounting (made by PID {})", name, pid));
  return g;
}

ServerCgroup::ServerCgroup(ServerCgroup&& o) noexcept { *this = std::move(o); }

ServerCgroup& ServerCgroup::operator=(ServerCgroup&& o) noexcept {
  if (this != &o) {
    remove();
    name_ = std::exchange(o.name_, {});
    owner_ = std::exchange(o.owner_, true);
    dirs_ = std::exchange(o.dirs_, {});
    procs_fds_ = std::exchange(o.procs_fds_, {});
    v2_dir_ = std::exchange(o.v2_dir_, {});
    cpu_file_ = std::exchange(o.cpu_file_, {});
    cpu_source_ = std::exchange(o.cpu_source_, {});
    memory_file_ = std::exchange(o.memory_file_, {});
    memory_source_ = std::exchange(o.memory_source_, {});
    why_ = std::exchange(o.why_, {});
    cpu_resolution_ns_ = o.cpu_resolution_ns_;
  }
  return *this;
}

ServerCgroup::~ServerCgroup() { remove(); }

bool ServerCgroup::join_in_child() const {
  bool ok = true;
  for (const int fd : procs_fds_) ok = ::write(fd, "0", 1) == 1 && ok;
  return ok;
}

void ServerCgroup::confirm(pid_t pid) {
  for (const int fd : procs_fds_) ::close(fd);
  procs_fds_.clear();
  if (cpu_file_.empty()) return;
  const std::string dir = cpu_file_.substr(0, cpu_file_.rfind('/'));
  const auto procs = read_text(dir + "/cgroup.procs");
  std::istringstream list(procs.value_or(""));
  for (pid_t p = 0; list >> p;) {
    if (p == pid) return;
  }
  why_ = fmt::format("process {} did not join {}", pid, dir);
  cpu_file_.clear();
  cpu_source_.clear();
  memory_file_.clear();
  memory_source_.clear();
}

std::optional<std::int64_t> ServerCgroup::cpu_ns() const {
  if (cpu_file_.empty()) return std::nullopt;
  const auto text = read_text(cpu_file_);
  if (!text) return std::nullopt;
  if (cpu_resolution_ns_ == 1) return std::strtoll(text->c_str(), nullptr, 10);
  const std::size_t at = text->find("usage_usec ");
  if (at == std::string::npos) return std::nullopt;
  return std::strtoll(text->c_str() + at + 11, nullptr, 10) * 1000;
}

std::optional<std::int64_t> ServerCgroup::memory_bytes() const {
  if (memory_file_.empty()) return std::nullopt;
  const auto text = read_text(memory_file_);
  if (!text) return std::nullopt;
  return std::strtoll(text->c_str(), nullptr, 10);
}

std::vector<pid_t> ServerCgroup::pids() const {
  std::vector<pid_t> out;
  for (const auto& dir : dirs_) {
    std::istringstream list(read_text(dir + "/cgroup.procs").value_or(""));
    for (pid_t p = 0; list >> p;) out.push_back(p);
  }
  return out;
}

void ServerCgroup::remove() {
  for (const int fd : procs_fds_) ::close(fd);
  procs_fds_.clear();
  if (!owner_) {  // found, not made: its maker removes it
    dirs_.clear();
    v2_dir_.clear();
    return;
  }
  if (dirs_.empty()) return;
  if (!v2_dir_.empty()) {
    if (std::ofstream kill_file(v2_dir_ + "/cgroup.kill"); kill_file) kill_file << "1" << std::flush;
  }
  // Where cgroup.kill is missing (v1, or a kernel before 5.14), kill what is listed until
  // nothing is: a process forking meanwhile is caught on the next pass.
  for (int pass = 0; pass < 200; ++pass) {
    const auto left = pids();
    if (left.empty()) break;
    for (const pid_t p : left) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    // A killed process leaves its cgroup a moment after it is listed no more.
    for (int tries = 0; tries < 100 && ::rmdir(it->c_str()) < 0 && errno == EBUSY; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  dirs_.clear();
  v2_dir_.clear();
}

nlohmann::json ServerCgroup::describe() const {
  return {{"name", name_},
          {"cgroups", dirs_},
          {"cpu_source", cpu_source_.empty() ? nlohmann::json(nullptr) : nlohmann::json(cpu_source_)},
          {"memory_source", memory_source_.empty() ? nlohmann::json(nullptr) : nlohmann::json(memory_source_)}};
}

}  // namespace acceptbench
