// rusage_wrap OUT PROGRAM ARGS...: runs PROGRAM as a child, forwards SIGTERM, SIGINT and
// SIGUSR1 to it, and when it has exited writes wait4()'s rusage of it (every thread, and
// every child it reaped) to OUT as JSON, then exits with its status. The ground truth for
// the harness's context switches (a test's launcher).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace {
volatile sig_atomic_t child_pid = 0;
void forward(int sig) {
  if (child_pid > 0) ::kill(child_pid, sig);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: rusage_wrap OUT PROGRAM [ARGS...]\n");
    return argc < 3 ? 2 : 0;
  }
  struct sigaction sa {};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (const int sig : {SIGTERM, SIGINT, SIGUSR1}) ::sigaction(sig, &sa, nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    ::execvp(argv[2], argv + 2);
    std::perror("exec");
    ::_exit(127);
  }
  child_pid = pid;
  int status = 0;
  rusage u{};
  while (::wait4(pid, &status, 0, &u) < 0 && errno == EINTR) {
  }
  if (FILE* out = std::fopen(argv[1], "w")) {
    std::fprintf(out, "{\"nvcsw\": %ld, \"nivcsw\": %ld, \"utime_us\": %ld, \"stime_us\": %ld}\n", u.ru_nvcsw,
                 u.ru_nivcsw, u.ru_utime.tv_sec * 1'000'000L + u.ru_utime.tv_usec,
                 u.ru_stime.tv_sec * 1'000'000L + u.ru_stime.tv_usec);
    std::fclose(out);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
