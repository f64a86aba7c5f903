#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cgroup.hpp"
#include "env.hpp"
#include "launcher.hpp"
#include "process.hpp"
#include "supervise.hpp"

namespace acceptbench {
namespace {

const std::vector<std::string> kNasty = {
    "plain", "with space", "two  spaces", "it's", "'", "''", "\"double\"", "$HOME", "${HOME}", "$(echo pwned)",
    "`echo pwned`", "a;b", "a && b", "a|b", "a>b", "*", "?", "~", "#comment", "back\\slash", "new\nline", "tab\there",
    "-1", "--", "", "!", "%s"};

TEST(ShellQuoteTest, QuotesEveryByteLiterally) {
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_join({"kill", "-s", "TERM", "42"}), "'kill' '-s' 'TERM' '42'");
}

// A real POSIX shell splits the joined line back into exactly the words: what the remote
// login shell does with the command line ssh sends it.
TEST(ShellQuoteTest, ShSplitsTheJoinedLineBackIntoTheWords) {
  std::vector<std::string> cmd = {"printf", "%s\\0"};
  cmd.insert(cmd.end(), kNasty.begin(), kNasty.end());
  const std::string out = run_capture({"sh", "-c", shell_join(cmd)});
  std::vector<std::string> words;
  std::string cur;
  for (const char c : out) {
    if (c == '\0') {
      words.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  EXPECT_EQ(words, kNasty);
}

TEST(LauncherTest, ParsesSpecsAndRefusesOptionLikeHosts) {
  EXPECT_TRUE(Launcher::parse("local").local());
  const Launcher n = Launcher::parse("netns:srv");
  EXPECT_EQ(n.kind, Launcher::Kind::kNetns);
  EXPECT_EQ(n.target, "srv");
  EXPECT_TRUE(Launcher::parse("ssh:server.lab").remote());
  EXPECT_TRUE(Launcher::parse("client1", /*bare_is_ssh=*/true).remote());
  EXPECT_THROW(Launcher::parse("client1"), std::invalid_argument);
  EXPECT_THROW(Launcher::parse("ssh:-oProxyCommand=touch x"), std::invalid_argument);
  EXPECT_THROW(Launcher::parse("-oProxyCommand=x", true), std::invalid_argument);
  EXPECT_THROW(Launcher::parse("ssh:"), std::invalid_argument);
  EXPECT_THROW(Launcher::parse("netns:-x"), std::invalid_argument);
  EXPECT_THROW(Launcher::parse("telnet:x"), std::invalid_argument);
}

TEST(LauncherTest, SshGetsOneQuotedCommandAfterTheHost) {
  Launcher l = Launcher::parse("ssh:host");
  l.ssh_options = {"-F", "/tmp/cfg"};
  const auto argv = l.wrap({"/opt/my bin/acceptbench", "probe", "--pid", "42"});
  const std::vector<std::string> want = {"ssh",      "-n",   "-o",   "BatchMode=yes",
                                         "-F",       "/tmp/cfg", "--", "host",
                                         "'/opt/my bin/acceptbench' 'probe' '--pid' '42'"};
  EXPECT_EQ(argv, want);
  // A server session keeps its stdin (no -n) and execs the command.
  const auto server = l.wrap({"/bin/x"}, /*keep_stdin=*/true);
  EXPECT_EQ(std::count(server.begin(), server.end(), "-n"), 0);
  EXPECT_EQ(server.back(), "exec '/bin/x'");
  // Local runs the command itself, netns behind ip netns exec.
  EXPECT_EQ(Launcher::parse("local").wrap({"a", "b c"}), (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(Launcher::parse("netns:n").wrap({"a"}), (std::vector<std::string>{"ip", "netns", "exec", "n", "a"}));
}

TEST(SupervisorInfoTest, TheLineRoundTripsAndOtherLinesAreNotIt) {
  SupervisorInfo info;
  info.pid = 4242;
  info.cgroup = "acceptbench-4242-0";
  info.cpu_source = "cgroup-v1-cpuacct";
  info.resolution_ns = 1;
  info.memory_source = "cgroup-v1-memory";
  info.cgroups = {"/sys/fs/cgroup/cpuacct/acceptbench-4242-0", "/sys/fs/cgroup/memory/x/acceptbench-4242-0"};
  info.cpus = {1, 3};
  const std::string line = info.line();
  EXPECT_TRUE(line.starts_with("SUPERVISOR {")) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto back = SupervisorInfo::parse(line);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->cgroup, info.cgroup);
  EXPECT_EQ(back->cpu_source, info.cpu_source);
  EXPECT_EQ(back->resolution_ns, 1);
  EXPECT_EQ(back->cgroups, info.cgroups);
  EXPECT_EQ(back->cpus, info.cpus);
  EXPECT_EQ(back->describe()["name"], info.cgroup);
  // Without a cgroup: the reason travels instead.
  SupervisorInfo none;
  none.pid = 77;
  none.why = "no CPU cgroup could be made (mkdir /x: Read-only file system)";
  const auto back_none = SupervisorInfo::parse(none.line());
  ASSERT_TRUE(back_none.has_value());
  EXPECT_TRUE(back_none->cgroup.empty());
  EXPECT_EQ(back_none->why, none.why);
  // The server's own lines are not the supervisor's.
  EXPECT_FALSE(SupervisorInfo::parse("READY port=1 pid=2 model=x threads=1").has_value());
  EXPECT_FALSE(SupervisorInfo::parse("").has_value());
  // A SUPERVISOR line that does not parse is an error, not silently a server line.
  EXPECT_THROW(SupervisorInfo::parse("SUPERVISOR {"), std::runtime_error);
  EXPECT_THROW(SupervisorInfo::parse("SUPERVISOR {\"pid\": 5}"), std::runtime_error);
  SupervisorInfo bad = info;
  bad.pid = 1;
  EXPECT_THROW(SupervisorInfo::parse(bad.line()), std::runtime_error) << "a pid <= 1";
  bad = info;
  bad.cgroup = "../../etc";
  EXPECT_THROW(SupervisorInfo::parse(bad.line()), std::runtime_error) << "a name create() never makes";
}

TEST(CgroupNameTest, OnlyTheNamesCreateMakes) {
  EXPECT_EQ(ServerCgroup::creator_of("acceptbench-4242-0"), 4242);
  EXPECT_EQ(ServerCgroup::creator_of("acceptbench-2-17"), 2);
  for (const char* bad : {"acceptbench-1-0", "acceptbench-0-0", "acceptbench--5-0", "acceptbench-+5-0", "acceptbench-05-0",
                          "acceptbench- 5-0", "acceptbench-5-0/..", "acceptbench-5-0x", "acceptbench-5", "../acceptbench-5-0",
                          "acceptbench-5--1", "", "x"}) {
    EXPECT_FALSE(ServerCgroup::creator_of(bad).has_value()) << bad;
  }
}

// This process's path in a hierarchy (v1 `controller`, or v2 when empty), as its
// /proc/self/cgroup says: where ServerCgroup::find looks under a root.
std::string own_cgroup_path(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const std::size_t a = line.find(':'), b = line.find(':', a + 1);
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1) == "/" ? "" : line.substr(b + 1);
    if (controller.empty() ? line.starts_with("0::") : ("," + controllers + ",").find("," + controller + ",") != std::string::npos) {
      return path;
    }
  }
  return "/not-found";
}

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// find() reads a cgroup made by another process by the same code as create()'s: the layout
// of a v1 root (cpuacct ns, memory) and of a v2-only root (cpu.stat µs, memory.current).
TEST(CgroupFindTest, FindsACgroupByNameAndReadsItLikeItsOwn) {
  const std::string root = fmt::format("/tmp/acceptbench-cgfind-{}", ::getpid());
  const std::string name = fmt::format("acceptbench-{}-7", ::getpid());
  std::filesystem::remove_all(root);
  const std::string v1 = root + "/v1";
  write_file(v1 + "/cpuacct/cpuacct.usage", "0\n");
  write_file(v1 + "/memory/memory.usage_in_bytes", "0\n");
  const std::string cpu_dir = v1 + "/cpuacct" + own_cgroup_path("cpuacct") + "/" + name;
  const std::string mem_dir = v1 + "/memory" + own_cgroup_path("memory") + "/" + name;
  write_file(cpu_dir + "/cgroup.procs", "");
  write_file(cpu_dir + "/cpuacct.usage", "123456789\n");
  write_file(mem_dir + "/cgroup.procs", "");
  write_file(mem_dir + "/memory.usage_in_bytes", "4096\n");
  {
    ServerCgroup g = ServerCgroup::find(name, v1);
    EXPECT_EQ(g.name(), name);
    EXPECT_EQ(g.cpu_source(), "cgroup-v1-cpuacct");
    EXPECT_EQ(g.cpu_resolution_ns(), 1);
    EXPECT_EQ(g.memory_source(), "cgroup-v1-memory");
    const CgroupSample s = sample_cgroup(g);
    EXPECT_EQ(s.cpu_ns, 123456789);
    EXPECT_EQ(s.memory_bytes, 4096);
    const CgroupSample round = cgroup_sample_from_json(to_json(s));
    EXPECT_EQ(round.cpu_ns, s.cpu_ns);
    EXPECT_EQ(round.memory_bytes, s.memory_bytes);
    g.remove();  // found, not made: left to its maker
  }
  EXPECT_TRUE(std::filesystem::exists(cpu_dir));
  EXPECT_TRUE(std::filesystem::exists(mem_dir));
  EXPECT_THROW(ServerCgroup::find(fmt::format("acceptbench-{}-8", ::getpid()), v1), std::runtime_error);
  EXPECT_THROW(ServerCgroup::find("acceptbench-1-0", v1), std::invalid_argument);

  const std::string v2 = root + "/v2";
  write_file(v2 + "/cgroup.controllers", "cpu memory\n");
  const std::string dir = v2 + own_cgroup_path("") + "/" + name;
  write_file(dir + "/cgroup.procs", "");
  write_file(dir + "/cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n");
  write_file(dir + "/memory.current", "8192\n");
  const ServerCgroup g2 = ServerCgroup::find(name, v2);
  EXPECT_EQ(g2.cpu_source(), "cgroup-v2-cpu.stat");
  EXPECT_EQ(g2.cpu_resolution_ns(), 1000);
  EXPECT_EQ(g2.cpu_ns(), 42'000);
  EXPECT_EQ(g2.memory_bytes(), 8192);
  EXPECT_EQ(g2.describe()["cgroups"], nlohmann::json::array({dir}));
  std::filesystem::remove_all(root);
}

// A cgroup made here is found by its name and read the same way; once removed, it is not.
TEST(CgroupFindTest, WhatCreateMakesFindFinds) {
  ServerCgroup made = ServerCgroup::create();
  if (!made.cpu_available()) GTEST_SKIP() << "no cgroup here: " << made.why();
  {
    const ServerCgroup found = ServerCgroup::find(made.name());
    EXPECT_EQ(found.cpu_source(), made.cpu_source());
    EXPECT_EQ(found.memory_source(), made.memory_source());
    EXPECT_EQ(found.describe()["cgroups"], made.describe()["cgroups"]);
    EXPECT_TRUE(found.cpu_ns().has_value());
  }
  const auto dirs = made.describe()["cgroups"];
  for (const auto& d : dirs) EXPECT_TRUE(std::filesystem::exists(d.get<std::string>())) << "find() removed nothing";
  made.remove();
  for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(d.get<std::string>())) << d;
  EXPECT_THROW(ServerCgroup::find(made.name()), std::runtime_error);
}

TEST(HostTest, DescribesThisHostAndItsCpus) {
  const nlohmann::json h = collect_host_via(Launcher::parse("local"), "unused");
  EXPECT_EQ(h["launcher"], "local");
  EXPECT_FALSE(h["hostname"].get<std::string>().empty());
  EXPECT_TRUE(h["sysctls"].contains("net.core.somaxconn"));
  EXPECT_FALSE(cpus_allowed(h).empty());
  // A host whose probe failed: the reason, no CPUs.
  const nlohmann::json failed = collect_host_via(Launcher::parse("netns:acceptbench-no-such-ns"), "/nonexistent/acceptbench");
  EXPECT_TRUE(failed.contains("error")) << failed.dump();
  EXPECT_TRUE(cpus_allowed(failed).empty());
}

}  // namespace
}  // namespace acceptbench
