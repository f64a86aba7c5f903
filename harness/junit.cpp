#include "junit.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace acceptbench {

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\n': out += "&#10;"; break;
      default:
        // XML 1.0 allows no other control characters: keep the text readable instead.
        out += (static_cast<unsigned char>(c) < 0x20 && c != '\t') ? '?' : c;
    }
  }
  return out;
}

std::string compare_junit_xml(const nlohmann::json& rows, double alpha, const std::string& base_name,
                              const std::string& next_name, const std::string& cannot_decide) {
  std::string cases;
  int failures = 0, errors = 0;
  try {
    for (const auto& r : rows) {
      const std::string key = r.at("key"), metric = r.at("metric"), verdict = r.at("verdict");
      if (metric == "status") {
        // ok on one side, overloaded on the other (or on both): the status is the comparison.
        const std::string message =
            fmt::format("{}: {} {}, {} {} (an overloaded configuration is not ranked by its numbers)", verdict, base_name,
                        r.at("base_status").get<std::string>(), next_name, r.at("new_status").get<std::string>());
        cases += fmt::format("    <testcase classname=\"{}\" name=\"status\" time=\"0\">\n", xml_escape(key));
        if (verdict == "REGRESSION") {
          ++failures;
          cases += fmt::format("      <failure type=\"overloaded\" message=\"{0}\">{0}</failure>\n", xml_escape(message));
        } else {
          cases += fmt::format("      <system-out>{}</system-out>\n", xml_escape(message));
        }
        cases += "    </testcase>\n";
        continue;
      }
      std::string p = fmt::format("p = {:.4g}", r.at("p_value").get<double>());
      if (r.contains("p_holm")) p += fmt::format(", Holm-adjusted p = {:.4g}", r.at("p_holm").get<double>());
      const std::string message = fmt::format(
          "{}: {} median {:.3f} (n={}), {} median {:.3f} (n={}), ratio {:.4f}, threshold {:.1f}%, {} (alpha {})", verdict,
          base_name, r.at("base_median").get<double>(), r.value("base_n", 0), next_name, r.at("new_median").get<double>(),
          r.value("new_n", 0), r.at("ratio").get<double>(), 100 * r.at("threshold").get<double>(), p, alpha);
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n", xml_escape(key), xml_escape(metric));
      if (verdict == "REGRESSION") {
        ++failures;
        cases += fmt::format("      <failure type=\"regression\" message=\"{0}\">{0}</failure>\n", xml_escape(message));
      } else {
        cases += fmt::format("      <system-out>{}</system-out>\n", xml_escape(message));
      }
      cases += "    </testcase>\n";
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("compare row without a field JUnit needs: ") + e.what());
  }
  if (!cannot_decide.empty()) {
    ++errors;
    cases += fmt::format(
        "    <testcase classname=\"acceptbench.compare\" name=\"decision\" time=\"0\">\n"
        "      <error type=\"cannot-decide\" message=\"{0}\">{0}</error>\n    </testcase>\n",
        xml_escape(cannot_decide));
  }
  const std::string suite = xml_escape(fmt::format("acceptbench compare {} vs {}", base_name, next_name));
  const std::size_t tests = rows.size() + (cannot_decide.empty() ? 0 : 1);
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<testsuites name=\"acceptbench\" tests=\"{1}\" failures=\"{2}\" errors=\"{3}\">\n"
      "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"{3}\" skipped=\"0\" time=\"0\">\n"
      "{4}"
      "  </testsuite>\n"
      "</testsuites>\n",
      suite, tests, failures, errors, cases);
}

}  // namespace acceptbench
