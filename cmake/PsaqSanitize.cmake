# Instrumented builds for the reliability checks (docs/reliability.md, "Sanitizers" and
# "Fuzzing"). Both are off by default; with them off nothing here changes the build.
#
#   -DPSAQ_SANITIZE=address,undefined   ASan + UBSan on psaq, its tests and fuzz targets (clang or
#                                        gcc); every UBSan check aborts (-fno-sanitize-recover)
#   -DPSAQ_SANITIZE=thread              TSan (the threaded parts; docs/reliability.md)
#   -DPSAQ_FUZZ=ON                      libFuzzer coverage on all of psaq's code and the libFuzzer
#                                        binaries tests/fuzz/<name>_fuzz (clang only; use it with
#                                        PSAQ_SANITIZE=address,undefined)
#
# Only psaq's code is instrumented: LibTorch, Open MPI, glog, gflags and libstb are Debian's
# binaries (tests/fuzz compiles stb_image itself in these builds, see tests/fuzz/CMakeLists.txt).
# CTest runs every test of an instrumented build with the options of psaq_sanitizer_test_env()
# below (Open MPI's leak noise suppressed by tests/sanitizers/lsan.supp), and mpirun exports them
# to the ranks.
set(PSAQ_SANITIZE "" CACHE STRING
    "Sanitizers for psaq, its tests and fuzz targets: a -fsanitize= list, e.g. address,undefined or thread (empty: none)")
option(PSAQ_FUZZ "Build the libFuzzer targets of tests/fuzz (requires clang)" OFF)

set(_psaq_instrument "")
if(PSAQ_SANITIZE)
  list(APPEND _psaq_instrument -fsanitize=${PSAQ_SANITIZE} -fno-sanitize-recover=all
       -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${PSAQ_SANITIZE})
endif()
if(PSAQ_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PSAQ_FUZZ=ON needs clang (libFuzzer): configure with "
                        "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  # Coverage for the fuzzer on every psaq file; the binaries that are not fuzz targets link
  # libFuzzer's runtime without its main.
  list(APPEND _psaq_instrument -fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=fuzzer-no-link)
endif()
if(_psaq_instrument)
  # Line tables only: symbolised reports without full debug info of LibTorch's headers, which
  # would double the compile time.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    list(APPEND _psaq_instrument -gline-tables-only)
  else()
    list(APPEND _psaq_instrument -g1)
  endif()
  foreach(_flag ${_psaq_instrument})
    add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${_flag}>")
  endforeach()
endif()

# psaq_sanitizer_test_env([ASAN_EXTRA <options>] [MPI_TESTS <test>...]): in an instrumented
# build, gives every test defined so far in the calling directory the sanitizer options (appended
# to its ENVIRONMENT):
#   ASAN_OPTIONS   leaks detected, reports abort; plus ASAN_EXTRA (":"-joined)
#   LSAN_OPTIONS   suppressions=tests/sanitizers/lsan.supp (Open MPI's own leaks)
#   UBSAN_OPTIONS  halt_on_error, stack traces
#   TSAN_OPTIONS   halt_on_error, suppressions=tests/sanitizers/tsan.supp
# Tests that initialise MPI (labels mpi, cli, slurm, and those named in MPI_TESTS) also get
# fast_unwind_on_malloc=0: Open MPI's libraries and components have no frame pointers, so the fast
# unwinder stops at their first frame, in a component dlclose'd before the leak check, and no
# suppression can match it; the slow unwinder records the whole stack (through libmpi.so), at a
# cost of 2-8x on malloc-heavy code, hence not for the other tests.
# Call it at the end of each tests/ CMakeLists.txt (CMake < 3.28 sets test properties only in
# the directory that defined the test). Does nothing when PSAQ_SANITIZE is empty.
function(psaq_sanitizer_test_env)
  if(NOT PSAQ_SANITIZE)
    return()
  endif()
  cmake_parse_arguments(ARG "" "ASAN_EXTRA" "MPI_TESTS" ${ARGN})
  set(_supp "${PROJECT_SOURCE_DIR}/tests/sanitizers")
  set(_asan "detect_leaks=1:abort_on_error=1:symbolize=1")
  if(ARG_ASAN_EXTRA)
    string(APPEND _asan ":${ARG_ASAN_EXTRA}")
  endif()
  get_property(_tests DIRECTORY PROPERTY TESTS)
  foreach(_test ${_tests})
    get_property(_labels TEST ${_test} PROPERTY LABELS)
    set(_test_asan "${_asan}")
    if("mpi" IN_LIST _labels OR "cli" IN_LIST _labels OR "slurm" IN_LIST _labels OR
       _test IN_LIST ARG_MPI_TESTS)
      string(APPEND _test_asan ":fast_unwind_on_malloc=0")
    endif()
    set_property(TEST ${_test} APPEND PROPERTY ENVIRONMENT
                 "ASAN_OPTIONS=${_test_asan}"
                 "LSAN_OPTIONS=suppressions=${_supp}/lsan.supp:print_suppressions=0"
                 "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
                 "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${_supp}/tsan.supp")
  endforeach()
endfunction()

# Arguments mpirun needs to hand the options above to its ranks (empty when not sanitizing).
set(PSAQ_SANITIZER_MPIEXEC_ARGS "")
if(PSAQ_SANITIZE)
  set(PSAQ_SANITIZER_MPIEXEC_ARGS -x ASAN_OPTIONS -x LSAN_OPTIONS -x UBSAN_OPTIONS -x TSAN_OPTIONS)
endif()
