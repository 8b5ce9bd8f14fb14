// The one way psaq code includes glog.
//
// LibTorch's c10 has its own logging. When c10 is built with glog (Debian's libtorch) its header
// already includes glog; when it is not (the pip wheels' LibTorch), c10 defines LOG, CHECK, VLOG,
// ... itself and those clash with glog's. This header includes c10's logging first, removes the
// clashing macros in the second case, then includes glog, so every psaq file sees glog's macros.
// Never include <glog/logging.h> or <c10/util/Logging.h> directly.
//
// Use: CHECK* for internal invariants (a bug: abort at once); LOG(INFO) for milestones on rank 0;
// warnings and errors from any rank carry the rank (see dist/fatal.h, RankPrefix()).
#pragma once

#include <c10/util/Logging.h>

#ifndef C10_USE_GLOG
#undef LOG
#undef LOG_IF
#undef LOG_EVERY_N
#undef LOG_FIRST_N
#undef LOG_AT_FILE_LINE
#undef VLOG
#undef VLOG_IF
#undef VLOG_IS_ON
#undef DLOG
#undef DLOG_IF
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#undef CHECK_NOTNULL
#undef DCHECK
#undef DCHECK_EQ
#undef DCHECK_NE
#undef DCHECK_LE
#undef DCHECK_LT
#undef DCHECK_GE
#undef DCHECK_GT
#undef FATAL_IF
#endif

#include <glog/logging.h>
