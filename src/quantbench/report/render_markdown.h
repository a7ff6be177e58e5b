// Markdown report: the same sections as the HTML report, as tables a person can read in a terminal or
// a code review. Every piece of text from a run (task names, item keys, manifest values) is escaped so
// it cannot break a table or smuggle HTML into a Markdown viewer.
#pragma once
#include <string>

#include "quantbench/report/report_data.h"

namespace qb::report {

std::string render_markdown(const ReportData& d);
std::string markdown_escape(const std::string& s);

}  // namespace qb::report
