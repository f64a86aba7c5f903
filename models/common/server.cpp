#include "server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "socket.hpp"
#include "sys.hpp"

namespace po = boost::program_options;

namespace acceptbench {

namespace {

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "error: " << message << "\n(run with --help for the flags)\n";
  std::exit(2);
}

template <typename T>
void require_range(const po::variables_map& vm, const char* name, T value, T lo, T hi) {
  if (vm.count(name) && (value < lo || value > hi)) {
    usage_error(fmt::format("--{} must be in [{}, {}], got {}", name, lo, hi, value));
  }
}

}  // namespace

ServerOptions parse_server_options(int argc, char** argv, const ModelSpec& spec) {
  ServerOptions o;
  const int default_threads = spec.multi_acceptor ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) : 1;
  int threads = default_threads;
  unsigned port = 0;
  po::options_description desc(fmt::format(
      "{}: an acceptbench server ({}).\n"
      "Prints 'READY port=P pid=PID model={} threads=N' once listening, serves minimal HTTP/1.1,\n"
      "and on SIGTERM/SIGINT stops, prints one JSON stats object on stdout and exits 0.\n\nOptions",
      spec.id, spec.accept_semantics, spec.id));
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("bind", po::value(&o.bind)->default_value(o.bind), "IPv4 address to listen on")
    ("port", po::value(&port)->default_value(0), "TCP port; 0 picks an ephemeral port")
    ("threads", po::value(&threads)->default_value(default_threads),
        spec.multi_acceptor ? "acceptor/worker threads" : "must be 1 for this model")
    ("backlog", po::value(&o.backlog)->default_value(0), "listen backlog; 0 reads /proc/sys/net/core/somaxconn")
    ("work-us", po::value(&o.work_us)->default_value(0), "CPU spin per request, microseconds")
    ("sleep-us", po::value(&o.sleep_us)->default_value(0), "blocking wait per request, microseconds")
    ("sleep-fraction", po::value(&o.sleep_fraction)->default_value(o.sleep_fraction),
        "fraction of requests that wait --sleep-us, evenly spaced (0.01: every 100th)")
    ("stall-worker", po::value(&o.stall_worker)->default_value(o.stall_worker),
        "acceptor index whose first request after each --stall-every-ms blocks --stall-ms; -1: none")
    ("stall-ms", po::value(&o.stall_ms)->default_value(o.stall_ms), "length of the --stall-worker's stall")
    ("stall-every-ms", po::value(&o.stall_every_ms)->default_value(o.stall_every_ms), "period of the stalls")
    ("response-bytes", po::value(&o.response_bytes)->default_value(o.response_bytes), "response body size")
    ("read-timeout-ms", po::value(&o.read_timeout_ms)->default_value(o.read_timeout_ms),
        "close a connection idle or stalled mid-request this long")
    ("grace-ms", po::value(&o.grace_ms)->default_value(o.grace_ms), "after SIGTERM, time to finish in-flight requests")
    ("accept-batch", po::value(&o.accept_batch)->default_value(o.accept_batch),
        "epoll models: accepts per listen-fd wakeup, 0 = until EAGAIN")
    ("accept-mutex-delay-ms", po::value(&o.accept_mutex_delay_ms)->default_value(o.accept_mutex_delay_ms),
        "epoll-mutex: how long a worker without the mutex waits before trying again (nginx accept_mutex_delay)")
    ("exit-on-stdin-eof", po::bool_switch(&o.exit_on_stdin_eof),
        "stop as on SIGTERM when stdin reaches EOF (a harness keeps a pipe open: the server dies with it, "
        "also behind ssh)")
    ("max-conns", po::value(&o.max_conns)->default_value(o.max_conns),
        "thread-per-conn, fork-per-conn: most connections served at once (live threads or children); at the "
        "cap the acceptor waits, and new connections wait in the backlog, until one closes; 0 = no cap");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    std::exit(0);
  }
  if (port > 65535) usage_error(fmt::format("--port must be in [0, 65535], got {}", port));
  o.port = static_cast<std::uint16_t>(port);
  if (!spec.multi_acceptor && !vm["threads"].defaulted() && threads != 1) {
    usage_error(fmt::format("--threads {} makes no sense for {}: it has exactly one acceptor", threads, spec.id));
  }
  require_range(vm, "threads", threads, 1, kMaxAcceptors);
  o.threads = threads;
  require_range(vm, "backlog", o.backlog, 0, 1 << 20);
  require_range(vm, "work-us", o.work_us, 0u, 10'000'000u);
  require_range(vm, "sleep-us", o.sleep_us, 0u, 10'000'000u);
  require_range(vm, "response-bytes", o.response_bytes, 0u, 64u << 20);
  if (vm.count("sleep-fraction") && !(o.sleep_fraction > 0 && o.sleep_fraction <= 1)) {
    usage_error(fmt::format("--sleep-fraction must be in (0, 1], got {}", o.sleep_fraction));
  }
  if (!vm["sleep-fraction"].defaulted() && o.sleep_us == 0) usage_error("--sleep-fraction needs --sleep-us");
  require_range(vm, "stall-worker", o.stall_worker, -1, threads - 1);
  require_range(vm, "stall-ms", o.stall_ms, 0u, 60'000u);
  require_range(vm, "stall-every-ms", o.stall_every_ms, 1u, 3'600'000u);
  if ((o.stall_worker >= 0) != (o.stall_ms > 0)) usage_error("--stall-worker and --stall-ms go together");
  require_range(vm, "read-timeout-ms", o.read_timeout_ms, 1, 3'600'000);
  require_range(vm, "grace-ms", o.grace_ms, 0, 600'000);
  require_range(vm, "accept-batch", o.accept_batch, 0, 1 << 16);
  require_range(vm, "accept-mutex-delay-ms", o.accept_mutex_delay_ms, 1, 60'000);
  require_range(vm, "max-conns", o.max_conns, 0, 1 << 20);
  if (!spec.event_loop && !vm["accept-batch"].defaulted()) {
    usage_error(fmt::format("--accept-batch makes no sense for {}: it accepts with blocking accept()", spec.id));
  }
  if (!spec.accept_mutex && !vm["accept-mutex-delay-ms"].defaulted()) {
    usage_error(fmt::format("--accept-mutex-delay-ms makes no sense for {}: it has no accept mutex", spec.id));
  }
  if (!spec.max_conns && !vm["max-conns"].defaulted()) {
    usage_error(fmt::format("--max-conns makes no sense for {}: it has no thread or process per connection", spec.id));
  }
  return o;
}

namespace {
std::atomic<Server*> current_server{nullptr};
}  // namespace

Server* Server::current() { return current_server.load(); }

Server::Server(const ModelSpec& spec, ServerOptions options)
    : spec_(spec),
      options_(std::move(options)),
      responses_(options_.response_bytes),
      shared_(map_shared_state()),
      stop_event_(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")) {
  current_server.store(this);
  shared_->next_stall_ns.store(now_ns() + std::int64_t{options_.stall_every_ms} * 1'000'000);
}

bool Server::past_grace() const {
  return stopping() && now_ns() >= shared_->stop_deadline_ns.load(std::memory_order_relaxed);  // ordered by stopping()
}

UniqueFd Server::listen(bool reuseport, bool nonblocking, std::uint16_t port) {
  ListenerOptions lo;
  lo.bind = options_.bind;
  lo.port = port != 0 ? port : options_.port;
  lo.backlog = options_.backlog;
  lo.reuseport = reuseport;
  lo.nonblocking = nonblocking;
  if (reuseport && port == 0 && options_.port != 0) {
    // A second reuseport server on a port in use would silently join the first one's group
    // and split its traffic: probe with a plain listener first, which fails if anyone listens.
    ListenerOptions probe = lo;
    probe.reuseport = false;
    make_listener(probe);
  }
  UniqueFd fd = make_listener(lo);
  register_listener(fd.get());
  return fd;
}

std::vector<UniqueFd> Server::listen_group(int n, bool nonblocking) {
  std::vector<UniqueFd> group;
  group.push_back(listen(/*reuseport=*/true, nonblocking));
  const std::uint16_t port = local_port(group.front().get());
  for (int i = 1; i < n; ++i) group.push_back(listen(true, nonblocking, port));
  return group;
}

void run_threads(int n, const std::function<void(int)>& body) {
  std::mutex error_mutex;
  std::exception_ptr first_error;
  {
    std::vector<std::jthread> threads;
    threads.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        std::string message;
        try {
          body(i);
          return;
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
          message = "unknown exception";
        }
        {
          const std::lock_guard lock(error_mutex);
          if (!first_error) first_error = std::current_exception();
        }
        // Stop the other workers: a server half alive (or never READY) hides the failure.
        if (Server* server = Server::current()) server->fail(fmt::format("worker {}: {}", i, message));
      });
    }
  }  // jthreads join here
  if (first_error) std::rethrow_exception(first_error);
}

void wait_for_workers(Server& server, int slack_ms) {
  auto& live = server.shared().live_workers;
  while (live.load() > 0) {
    if (server.stopping() &&
        now_ns() > server.shared().stop_deadline_ns.load(std::memory_order_relaxed) + std::int64_t{slack_ms} * 1'000'000) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Server::register_listener(int fd) {
  UniqueFd dup(check(::fcntl(fd, F_DUPFD_CLOEXEC, 3), "dup listener"));
  const std::lock_guard lock(listeners_mutex_);
  listeners_.push_back(std::move(dup));
}

void Server::announce_ready(std::uint16_t port) {
  const std::string line =
      fmt::format("READY port={} pid={} model={} threads={}\n", port, ::getpid(), spec_.id, options_.threads);
  // One write(2), so that the line arrives whole even through a pipe.
  if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) std::perror("write READY");
}

void Server::ready_after(int n_workers, std::uint16_t port) {
  ready_port_ = port;
  pending_workers_.store(n_workers);
}

void Server::worker_ready() {
  if (pending_workers_.fetch_sub(1) == 1) announce_ready(ready_port_);
}

namespace {
void sleep_us(std::uint64_t us) {
  const timespec ts{static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000) * 1000};
  ::nanosleep(&ts, nullptr);
}
}  // namespace

void Server::simulate_work(AcceptorStats& stats) const {
  if (options_.work_us > 0) {
    const std::int64_t until = now_ns() + std::int64_t{options_.work_us} * 1000;
    while (now_ns() < until) {
    }
  }
  if (options_.sleep_us > 0) {
    bool sleeps = true;
    if (options_.sleep_fraction < 1) {
      // Request n (over all workers) waits when floor((n + 1) F) > floor(n F): exactly
      // floor(N F) of the first N requests wait, evenly spaced.
      const auto n = static_cast<double>(shared_->work_seq.fetch_add(1, std::memory_order_relaxed));
      sleeps = std::floor((n + 1) * options_.sleep_fraction) > std::floor(n * options_.sleep_fraction);
    }
    if (sleeps) {
      sleep_us(options_.sleep_us);
      AcceptorStats::add(stats.slept);
    }
  }
  if (options_.stall_ms > 0 && &stats == &shared_->acceptors[static_cast<std::size_t>(options_.stall_worker)]) {
    const std::int64_t now = now_ns();
    if (now >= shared_->next_stall_ns.load(std::memory_order_relaxed)) {
      shared_->next_stall_ns.store(now + std::int64_t{options_.stall_every_ms} * 1'000'000, std::memory_order_relaxed);
      sleep_us(std::uint64_t{options_.stall_ms} * 1000);
      AcceptorStats::add(stats.stalls);
    }
  }
}

void Server::request_stop() { begin_stop(options_.grace_ms); }

void Server::fail(const std::string& message) {
  {
    const std::lock_guard lock(failure_mutex_);
    if (failed_.load(std::memory_order_relaxed)) return;
    failure_ = message;
    failed_.store(true, std::memory_order_release);
  }
  begin_stop(/*grace_ms=*/0);
}

std::string Server::failure() const {
  const std::lock_guard lock(failure_mutex_);
  return failure_;
}

void Server::begin_stop(int grace_ms) {
  if (stop_begun_.exchange(true)) return;
  shared_->stop_deadline_ns.store(now_ns() + std::int64_t{grace_ms} * 1'000'000, std::memory_order_relaxed);
  // The flag first, so that an acceptor woken by the shutdown sees it (instead of calling
  // accept() again and again on a dead listener until it does).
  shared_->stopping.store(true, std::memory_order_release);  // publishes the deadline
  {
    // shutdown() on a listening socket makes a blocked accept() return EINVAL (tested in
    // tests/common/socket_test.cpp), so blocking acceptors see the stop at once. Through
    // our duplicates: the model may already have closed its own fd.
    const std::lock_guard lock(listeners_mutex_);
    for (const auto& fd : listeners_) ::shutdown(fd.get(), SHUT_RD);
  }
  const std::uint64_t one = 1;
  if (::write(stop_event_.get(), &one, sizeof one) < 0) std::perror("write stop eventfd");
}

namespace {

nlohmann::json rusage_json(int who) {
  rusage u{};
  ::getrusage(who, &u);
  auto us = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  return {{"utime_us", us(u.ru_utime)}, {"stime_us", us(u.ru_stime)}, {"nvcsw", u.ru_nvcsw}, {"nivcsw", u.ru_nivcsw}};
}

std::string slurp_or_empty(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint64_t status_value(const std::string& status, const char* key) {
  const std::size_t at = status.find(key);
  return at == std::string::npos ? 0 : std::strtoull(status.c_str() + at + std::strlen(key), nullptr, 10);
}

// Child processes still alive (prefork's workers, fork-per-conn's children in flight): their
// context switches reach RUSAGE_CHILDREN only once reaped, so a snapshot adds them from
// /proc (every task of each child). A child reaped between two snapshots shows its whole
// life in the second and its part so far in the first: the difference is right. The
// kernel here may lack /proc/PID/task/TID/children, so this scans /proc for our PPID.
nlohmann::json live_children_json() {
  const pid_t self = ::getpid();
  std::uint64_t nvcsw = 0, nivcsw = 0, n = 0;
  DIR* proc = ::opendir("/proc");
  if (!proc) return {{"processes", 0}, {"nvcsw", 0}, {"nivcsw", 0}};
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string dir = std::string("/proc/") + e->d_name;
    const std::string stat = slurp_or_empty(dir + "/stat");
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) != 2 || ppid != self || state == 'Z') continue;
    ++n;
    DIR* tasks = ::opendir((dir + "/task").c_str());
    if (!tasks) continue;
    while (dirent* t = ::readdir(tasks)) {
      if (t->d_name[0] == '.') continue;
      const std::string status = slurp_or_empty(dir + "/task/" + t->d_name + "/status");
      nvcsw += status_value(status, "\nvoluntary_ctxt_switches:");
      nivcsw += status_value(status, "nonvoluntary_ctxt_switches:");
    }
    ::closedir(tasks);
  }
  ::closedir(proc);
  return {{"processes", n}, {"nvcsw", nvcsw}, {"nivcsw", nivcsw}};
}

}  // namespace

nlohmann::json snapshot_json(const SharedState& state, int acceptors, std::uint64_t seq) {
  nlohmann::json s = stats_json(state, acceptors);
  s["seq"] = seq;
  s["mono_ns"] = now_ns();
  s["rusage_self"] = rusage_json(RUSAGE_SELF);          // every thread, exited ones included
  s["rusage_children"] = rusage_json(RUSAGE_CHILDREN);  // reaped children
  s["live_children"] = live_children_json();
  return s;
}

int server_main(int argc, char** argv, const ModelSpec& spec, void (*run)(Server&)) {
  ServerOptions options = parse_server_options(argc, argv, spec);

  // Signals are taken by this thread only: block them before any thread starts.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1);  // a snapshot request (the harness, at a window's edges)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(spec, std::move(options));
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }

  std::atomic<bool> model_done{false};
  std::exception_ptr model_error;
  std::thread model([&] {
    try {
      run(*server);
    } catch (...) {
      model_error = std::current_exception();
    }
    model_done.store(true);
  });

  // --exit-on-stdin-eof: a thread reads stdin to its end (a harness that dies, however, or
  // an ssh session that drops, closes it); the loop below then stops the server.
  static std::atomic<bool> stdin_eof{false};  // static: the detached reader may outlive this frame
  if (server->options().exit_on_stdin_eof) {
    std::thread([] {
      char buf[256];
      for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        break;
      }
      stdin_eof.store(true);
    }).detach();
  }

  bool signalled = false;
  std::uint64_t snapshots = 0;
  while (!model_done.load() && !server->failed()) {
    const timespec tick{0, 50'000'000};
    const int sig = ::sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGUSR1) {
      // One line, one write(2), so that it arrives whole through a pipe or ssh.
      const std::string line =
          "SNAPSHOT " + snapshot_json(server->shared(), server->options().threads, ++snapshots).dump() + "\n";
      if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) std::perror("write snapshot");
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT || stdin_eof.load()) {
      signalled = sig == SIGTERM || sig == SIGINT;
      server->request_stop();
      break;
    }
  }
  // The model must finish within the grace period (none after a worker failed); give it one
  // more second, then report what was counted anyway rather than hang.
  const int grace_ms = server->failed() ? 0 : server->options().grace_ms;
  const std::int64_t hard_deadline = now_ns() + (std::int64_t{grace_ms} + 1000) * 1'000'000;
  while (!model_done.load() && now_ns() < hard_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool clean = model_done.load();
  if (clean) {
    model.join();
  } else {
    model.detach();
  }
  if (server->failed() || model_error) {
    std::string message = server->failure();  // a worker's, which a model error may repeat
    if (message.empty()) {
      try {
        std::rethrow_exception(model_error);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
        message = "unknown exception";
      }
    }
    fmt::print(stderr, "error: {}\n", message);
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(2);
  }

  nlohmann::json stats = stats_json(server->shared(), server->options().threads);
  const ServerOptions& o = server->options();
  stats["model"] = spec.id;
  stats["pid"] = ::getpid();
  stats["threads"] = o.threads;
  stats["accept_semantics"] = spec.accept_semantics;
  stats["clean_shutdown"] = clean;
  stats["live_workers_peak"] =
      spec.max_conns ? nlohmann::json(server->shared().live_workers_peak.load()) : nlohmann::json(nullptr);
  stats["signalled"] = signalled;
  stats["config"] = {{"bind", o.bind},
                     {"backlog", o.backlog > 0 ? o.backlog : somaxconn()},
                     {"work_us", o.work_us},
                     {"sleep_us", o.sleep_us},
                     {"sleep_fraction", o.sleep_fraction},
                     {"stall_worker", o.stall_worker},
                     {"stall_ms", o.stall_ms},
                     {"stall_every_ms", o.stall_every_ms},
                     {"response_bytes", o.response_bytes},
                     {"read_timeout_ms", o.read_timeout_ms},
                     {"grace_ms", o.grace_ms},
                     {"accept_batch", spec.event_loop ? nlohmann::json(o.accept_batch) : nlohmann::json(nullptr)},
                     {"accept_mutex_delay_ms",
                      spec.accept_mutex ? nlohmann::json(o.accept_mutex_delay_ms) : nlohmann::json(nullptr)},
                     {"max_conns", spec.max_conns ? nlohmann::json(o.max_conns) : nlohmann::json(nullptr)}};
  const std::string text = stats.dump() + "\n";
  if (::write(STDOUT_FILENO, text.data(), text.size()) < 0) std::perror("write stats");
#if defined(__SANITIZE_ADDRESS__)
  // _Exit skips LeakSanitizer's check at exit; a leak found here fails the run (exit 23).
  __lsan_do_leak_check();
#endif
  std::_Exit(0);  // detached or parked threads must not run destructors under us
}

}  // namespace acceptbench
