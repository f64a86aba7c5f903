#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "launcher.hpp"
#include "process.hpp"

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

}  // namespace
}  // namespace acceptbench
