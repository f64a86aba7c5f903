// deny_syscall NR ERRNO PROGRAM [ARGS...]: runs PROGRAM with system call number NR failing
// with ERRNO (a seccomp filter; other calls are allowed). For tests that need a system call
// to fail, e.g. sched_getaffinity. Exit 2 on bad usage; 127 if PROGRAM cannot be run.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

#if defined(__x86_64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "deny_syscall: unknown architecture"
#endif

int usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: deny_syscall NR ERRNO PROGRAM [ARGS...]\n"
               "Runs PROGRAM with system call number NR failing with errno ERRNO (seccomp).\n"
               "  -h, --help  print this help and exit\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) return usage(0);
  if (argc < 4) return usage(2);
  char* end = nullptr;
  const long nr = std::strtol(argv[1], &end, 10);
  if (*end != '\0' || nr < 0) return usage(2);
  const long err = std::strtol(argv[2], &end, 10);
  if (*end != '\0' || err <= 0 || err > 4095) return usage(2);
  const auto u16 = [](unsigned v) { return static_cast<unsigned short>(v); };
  sock_filter code[] = {
      {u16(BPF_LD | BPF_W | BPF_ABS), 0, 0, static_cast<std::uint32_t>(offsetof(seccomp_data, arch))},
      {u16(BPF_JMP | BPF_JEQ | BPF_K), 1, 0, kArch},
      {u16(BPF_RET | BPF_K), 0, 0, SECCOMP_RET_ALLOW},
      {u16(BPF_LD | BPF_W | BPF_ABS), 0, 0, static_cast<std::uint32_t>(offsetof(seccomp_data, nr))},
      {u16(BPF_JMP | BPF_JEQ | BPF_K), 0, 1, static_cast<std::uint32_t>(nr)},
      {u16(BPF_RET | BPF_K), 0, 0, SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(err) & SECCOMP_RET_DATA)},
      {u16(BPF_RET | BPF_K), 0, 0, SECCOMP_RET_ALLOW},
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("deny_syscall: seccomp");
    return 127;
  }
  ::execvp(argv[3], argv + 3);
  std::perror("deny_syscall: exec");
  return 127;
}
