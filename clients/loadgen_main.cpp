// loadgen: the acceptbench load client. See clients/README.md.
#include <sys/resource.h>
#include <time.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "loadgen.hpp"

namespace po = boost::program_options;
using namespace acceptbench;

namespace {

[[noreturn]] void usage_error(const std::string& m) {
  fmt::print(stderr, "loadgen: error: {}\n(run with --help for the flags)\n", m);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  LoadConfig c;
  std::string target, close = "client", json_file, cpus;
  bool quiet = false, no_spread = false;
  double start_at = 0;
  int hold = 0;
  po::options_description desc(
      "loadgen: a multithreaded HTTP/1.1 load client measuring connections per second,\n"
      "latency (connect, first byte, total) and errors by kind.\n\n"
      "Usage: loadgen --target HOST:PORT [options]\n\nOptions");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("target", po::value(&target)->required(), "HOST:PORT to load (IPv4)")
    ("threads", po::value(&c.threads)->default_value(1), "client threads, each its own epoll loop")
    ("connections", po::value(&c.connections)->default_value(1), "closed loop: connections in flight")
    ("rate", po::value(&c.rate)->default_value(0), "open loop: new connections per second (0 = closed loop)")
    ("requests-per-conn", po::value(&c.requests_per_conn)->default_value(1), "requests on each connection")
    ("duration", po::value(&c.duration_s)->default_value(5), "measured seconds")
    ("warmup", po::value(&c.warmup_s)->default_value(0), "seconds before the measurement, not recorded")
    ("count", po::value(&c.count)->default_value(0), "stop after this many measured connections (0: no limit)")
    ("close", po::value(&close)->default_value(close), "who closes: client, server (Connection: close), rst (SO_LINGER 0)")
    ("path", po::value(&c.path)->default_value(c.path), "request path")
    ("timeout-ms", po::value(&c.timeout_ms)->default_value(c.timeout_ms), "a connection without progress this long fails")
    ("drain-ms", po::value(&c.drain_ms)->default_value(c.drain_ms),
        "after the window, let measured connections in flight finish for up to this long (late completions)")
    ("max-in-flight", po::value(&c.max_in_flight)->default_value(c.max_in_flight), "open loop: cap on connections in flight")
    ("slow-fraction", po::value(&c.slow_fraction)->default_value(0), "this fraction of connections are slow clients")
    ("slow-ms", po::value(&c.slow_ms)->default_value(0), "a slow client waits this long between handshake and request")
    ("spin-us", po::value(&c.spin_us)->default_value(c.spin_us), "open loop: poll without sleeping this long before each due start")
    ("late-threshold-us", po::value(&c.late_threshold_us)->default_value(c.late_threshold_us), "open loop: flag client_late when start lateness p99 exceeds this")
    ("hold", po::value(&hold)->default_value(0),
        "hold this many idle keep-alive connections open during the run (each answered once first)")
    ("cpus", po::value(&cpus), "pin client threads round-robin to these CPUs, e.g. 0 or 0-1")
    ("no-spread", po::bool_switch(&no_spread), "loopback: do not spread source addresses over 127.0.0.0/8")
    ("json", po::value(&json_file), "write the full result (raw histogram buckets included) to this file; - : stdout")
    ("start-at", po::value(&start_at)->default_value(0),
        "start at this wall-clock time (seconds since the epoch), so clients on several hosts share one window; "
        "more than 0.25 s late is an error")
    ("quiet,q", po::bool_switch(&quiet), "no progress line");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
    const std::size_t colon = target.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("--target must be HOST:PORT");
    c.host = target.substr(0, colon);
    const int port = std::stoi(target.substr(colon + 1));
    if (port < 1 || port > 65535) throw std::invalid_argument("--target port must be 1..65535");
    c.port = static_cast<std::uint16_t>(port);
    c.close = close_policy_from_string(close);
    c.spread_sources = !no_spread;
    if (!cpus.empty()) c.cpus = parse_cpu_list(cpus);
    if (vm["connections"].defaulted() && c.rate == 0) c.connections = c.threads;
    validate(c);
    if (hold < 0 || hold > 1'000'000) throw std::invalid_argument("--hold must be 0..1000000");
  } catch (const po::error& e) {
    usage_error(e.what());
  } catch (const std::exception& e) {
    usage_error(e.what());
  }

  if (start_at > 0) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const double late = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9 - start_at;
    if (late > 0.25) {
      fmt::print(stderr, "loadgen: error: started {:.3f} s after --start-at (launch took too long, or the clocks differ)\n", late);
      return 1;
    }
    if (late < -600) usage_error("--start-at is more than 10 minutes away");
    const double wait = -late;
    if (wait > 0) {
      timespec until{static_cast<time_t>(std::floor(start_at)),
                     static_cast<long>((start_at - std::floor(start_at)) * 1e9)};
      while (::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, nullptr) == EINTR) {
      }
    }
  }
  const bool json_stdout = json_file == "-";
  try {
    auto progress = [&](double t, std::uint64_t done) {
      if (!quiet) fmt::print(stderr, "\r  {:5.1f} s  {} connections measured   ", t, done);
    };
    HeldConnections held;
    if (hold > 0) {
      // One descriptor per held connection: the soft limit goes up to the hard one.
      rlimit files{};
      if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
      }
      held = HeldConnections::open(c.host, c.port, hold);
      if (!quiet) fmt::print(stderr, "  {} in {:.2f} s\n", held.result().describe(), held.result().open_s);
    }
    const LoadResult r = run_load(c, progress);
    if (!quiet) fmt::print(stderr, "\n");
    if (hold > 0) held.check();
    nlohmann::json out = r.to_json();
    if (hold > 0) out["hold"] = held.result().to_json();
    if (json_stdout) {
      fmt::print("{}\n", out.dump());
      fmt::print(stderr, "{}", summarize(r));
    } else if (!json_file.empty()) {
      const std::string tmp = json_file + ".tmp";
      {
        std::ofstream f(tmp);
        f << out.dump(1) << "\n";
        if (!f) throw std::runtime_error("cannot write " + tmp);
      }
      if (std::rename(tmp.c_str(), json_file.c_str()) != 0) throw std::runtime_error("cannot rename to " + json_file);
    }
    if (!json_stdout) fmt::print("{}", summarize(r));
    if (hold > 0) {
      const HoldResult& h = held.result();
      fmt::print(json_stdout ? stderr : stdout,
                 "  hold: {}; {} still open at the end; client memory {:.0f} bytes per held connection "
                 "(VmRSS delta), kernel TCP memory delta {} KiB (both ends)\n",
                 h.describe(), h.still_open_at_end, h.client_bytes_per_conn(), h.kernel_tcp_mem_delta_kb);
    }
    return r.connections > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "loadgen: error: {}\n", e.what());
    return 1;
  }
}
