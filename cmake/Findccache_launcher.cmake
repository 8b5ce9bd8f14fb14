# Uses ccache as the compiler launcher when it is installed (rebuilds on 2 cores are then cheap).
find_program(PSAQ_CCACHE ccache)
if(PSAQ_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${PSAQ_CCACHE}" CACHE STRING "" FORCE)
  set(CMAKE_CUDA_COMPILER_LAUNCHER "${PSAQ_CCACHE}" CACHE STRING "" FORCE)
endif()
set(ccache_launcher_FOUND TRUE)
