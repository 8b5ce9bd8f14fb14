#include "tests/testing/oracle.h"

namespace psaq::testing {

// PSAQ_ORACLE_PYTHON is defined for this file only (tests/CMakeLists.txt), so configuring another
// interpreter recompiles one file, not every test.
std::string OraclePython() {
#ifdef PSAQ_ORACLE_PYTHON
  return PSAQ_ORACLE_PYTHON;
#else
  return "";
#endif
}

}  // namespace psaq::testing
