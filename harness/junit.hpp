#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace acceptbench {

// JUnit XML (the format GitLab, Jenkins and GitHub test reporters read) from compare's
// result rows (CompareReport::rows): one <testcase> per compared configuration and metric,
// classname = the configuration's key, name = the metric; a row whose verdict is
// "REGRESSION" is a <failure> whose message carries both medians, the ratio, the threshold,
// the p-value (and the Holm-adjusted one when the row has it) and alpha. Every row needs key,
// metric, base_median, new_median, ratio, p_value, threshold and verdict; throws
// std::invalid_argument when one is missing. A non-empty `cannot_decide` (the repetitions
// cannot reach significance) adds a test case "decision" in <error> with that text, so the
// report is red for the same reason the exit status is.
std::string compare_junit_xml(const nlohmann::json& rows, double alpha, const std::string& base_name,
                              const std::string& next_name, const std::string& cannot_decide = "");

// Escapes text for an XML attribute or element.
std::string xml_escape(const std::string& s);

}  // namespace acceptbench
