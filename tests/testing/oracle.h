// Python reference implementations (oracles) for tests: pycocotools and friends, installed from
// pinned PyPI versions into a virtual environment by launch/setup.sh (psaq_python_oracles) and
// passed to CMake as PSAQ_ORACLE_PYTHON. launch/test.sh always sets it. A test that needs an
// oracle calls RunOracle; without the environment it FAILS with the command that sets it up (an
// oracle test never turns into a silent skip).
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace psaq::testing {

// The oracle interpreter, or "" when the build was configured without one (defined in
// oracle.cc, the one file the configured path is compiled into).
std::string OraclePython();

// Runs `<oracle python> <script> <args>` (args are passed to the shell as they are: quote them)
// and returns its stdout. Throws when there is no oracle environment or the script fails, with
// the command and its exit status (the script's stderr goes to the test's stderr).
inline std::string RunOracle(const std::string& script, const std::string& args) {
  const std::string python = OraclePython();
  if (python.empty()) {
    throw std::runtime_error(
        "no oracle Python: configure with -DPSAQ_ORACLE_PYTHON=<venv>/bin/python3 after "
        "`source launch/setup.sh && psaq_python_oracles` (launch/test.sh does both)");
  }
  const std::string command = "'" + python + "' '" + script + "' " + args;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run: " + command);
  std::string out;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (status != 0) {
    throw std::runtime_error("oracle failed (status " + std::to_string(status) + "): " + command);
  }
  return out;
}

}  // namespace psaq::testing
