# Helpers shared by the folders: warnings on psaq's own targets and one library per folder.

# psaq_warnings(<target>): -Wall -Wextra on our code (not on LibTorch's headers, which are
# included as SYSTEM), -Werror when PSAQ_WERROR is on.
function(psaq_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  if(PSAQ_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()

# psaq_library(<name> SOURCES <.cc files...> [CUDA_SOURCES ...] DEPS <targets...>): a static
# library from the listed sources of the calling folder (listed, not globbed: a new file is a
# reviewed line here); CUDA sources are added when PSAQ_CUDA_ENABLED. DEPS are the layers below it
# (docs/architecture.md): linking is how the dependency direction is enforced.
function(psaq_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;CUDA_SOURCES" ${ARGN})
  set(_srcs ${ARG_SOURCES})
  if(PSAQ_CUDA_ENABLED AND ARG_CUDA_SOURCES)
    list(APPEND _srcs ${ARG_CUDA_SOURCES})
  endif()
  add_library(${name} STATIC ${_srcs})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_definitions(${name} PUBLIC PSAQ_VERSION="${PROJECT_VERSION}")
  psaq_warnings(${name})
endfunction()
