// Shared by the fuzz entry points of tests/fuzz/ (each defines LLVMFuzzerTestOneInput, built both
// as a libFuzzer binary under -DPSAQ_FUZZ=ON and as a plain replay executable, replay_main.cc).
//
// What counts as a finding (the process dies, so libFuzzer saves the input and the replay test
// fails):
//   - a crash, a sanitizer report, an abort (a glog CHECK included), a hang (libFuzzer's -timeout,
//     the replay's --max_seconds);
//   - an exception the documented error path does not allow: std::bad_alloc (an unnamed
//     allocation failure is not a clean error) or LibTorch's "can't allocate memory" (an
//     allocation sized by the input instead of refused before it); anything not derived from
//     std::exception;
//   - a property a target checks on accepted input (e.g. the header-only and the full safetensors
//     reads agree), reported by Fail().
// Any other std::exception is the clean error the parsers are meant to throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace psaq::fuzz {

// A directory of this process's own ("<TMPDIR>/psaq_fuzz_<pid>_XXXXXX"), created on first use
// and removed with its contents at exit.
const std::string& ScratchDir();

// Writes `size` bytes to "<ScratchDir()>/<name>" (replacing it; no fsync: nothing needs to
// survive) and returns the path. Aborts when it cannot (the harness, not the input, is broken).
std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size);

// Prints "psaq fuzz <target>: <what>" to stderr and aborts, which libFuzzer and the replay report
// as a crash on the current input.
[[noreturn]] void Fail(const char* target, const std::string& what);

// Runs `parse`; returns true when it returned, false when it threw a clean error (see above).
// Calls Fail for the exceptions that are findings.
bool Parses(const char* target, const std::function<void()>& parse);

// One-time set-up of every target: LibTorch on one intra-op thread (libFuzzer runs one input at a
// time; a pool of threads per process only adds noise), idempotent.
void SetUpProcess();

}  // namespace psaq::fuzz
