# Resolves the CUDA and NCCL options.
#   PSAQ_CUDA_ENABLED: LibTorch has CUDA (CUDA tensors exist), so device kernels are built.
#   PSAQ_NCCL_ENABLED: the CUDA toolkit (runtime) and NCCL are present. This does not need a CUDA
#     LibTorch: the NCCL backend works on raw device pointers and a CUDA stream, so it compiles (and
#     links) on CPU-only CI machines that have /usr/local/cuda.
set(_torch_has_cuda OFF)
# LibTorch 2.x leaves a normal variable CMAKE_CUDA_ARCHITECTURES=OFF behind (see CMakeLists.txt),
# which would hide the cached architectures and give nvcc its default (sm_75 for CUDA 13).
if(DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT CMAKE_CUDA_ARCHITECTURES)
  unset(CMAKE_CUDA_ARCHITECTURES)
endif()
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(_torch_has_cuda ON)
endif()

if(PSAQ_WITH_CUDA STREQUAL "AUTO")
  set(PSAQ_CUDA_ENABLED ${_torch_has_cuda})
elseif(PSAQ_WITH_CUDA)
  if(NOT _torch_has_cuda)
    message(FATAL_ERROR "PSAQ_WITH_CUDA=ON but this LibTorch (${Torch_DIR}) was built without CUDA")
  endif()
  set(PSAQ_CUDA_ENABLED ON)
else()
  set(PSAQ_CUDA_ENABLED OFF)
endif()

set(PSAQ_NCCL_ENABLED OFF)
if(NOT PSAQ_WITH_NCCL STREQUAL "OFF")
  if(NOT CUDAToolkit_FOUND)
    if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
      set(CUDAToolkit_ROOT /usr/local/cuda)
    endif()
    find_package(CUDAToolkit QUIET)
  endif()
  find_package(NCCL QUIET)
  if(CUDAToolkit_FOUND AND NCCL_FOUND)
    set(PSAQ_NCCL_ENABLED ON)
  elseif(PSAQ_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "PSAQ_WITH_NCCL=ON but the CUDA toolkit (${CUDAToolkit_FOUND}) or NCCL "
                        "(${NCCL_FOUND}) was not found; set CUDAToolkit_ROOT / NCCL_ROOT")
  endif()
endif()

# PSAQ_CUDA_KERNELS_ENABLED: nvcc compiles the raw-pointer kernels (gen/*.cu) into static
#   libraries with no LibTorch dependency (psaq_gen_cuda), so CPU-only CI machines with a CUDA
#   toolkit check that they compile. AUTO: on when nvcc is found; a CUDA LibTorch needs them
#   (the autograd functions dispatch CUDA tensors to them), so PSAQ_CUDA_ENABLED forces them on.
#   CMAKE_CUDA_ARCHITECTURES defaults to 90 (H100/H200): CMake would otherwise take nvcc's
#   default (sm_75 for CUDA 13), and "native" needs a GPU at configure time.
#   Checked with CMake 3.25.1 + nvcc 13.0 + GCC 12.2 (the CPU dev machines): no workaround needed.
set(PSAQ_CUDA_KERNELS_ENABLED OFF)
if(PSAQ_CUDA_ENABLED OR NOT PSAQ_BUILD_CUDA_KERNELS STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(PSAQ_NVCC nvcc
                 HINTS ${CUDAToolkit_ROOT} $ENV{CUDA_HOME} $ENV{CUDA_PATH} /usr/local/cuda
                 PATH_SUFFIXES bin)
    if(PSAQ_NVCC)
      set(CMAKE_CUDA_COMPILER "${PSAQ_NVCC}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER OR DEFINED ENV{CUDACXX})
    set(PSAQ_CUDA_KERNELS_ENABLED ON)
  elseif(PSAQ_CUDA_ENABLED OR PSAQ_BUILD_CUDA_KERNELS STREQUAL "ON")
    message(FATAL_ERROR "CUDA kernels requested (PSAQ_BUILD_CUDA_KERNELS=${PSAQ_BUILD_CUDA_KERNELS}, "
                        "CUDA LibTorch ${PSAQ_CUDA_ENABLED}) but nvcc was not found; set "
                        "CMAKE_CUDA_COMPILER or CUDAToolkit_ROOT")
  endif()
endif()

if(PSAQ_CUDA_KERNELS_ENABLED)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures of the kernels (90: H100/H200)")
  endif()
  if(NOT CMAKE_CUDA_HOST_COMPILER)
    # nvcc would pick the first g++ on PATH; keep host code on the C++ compiler of the project.
    set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}" CACHE FILEPATH "nvcc host compiler")
  endif()
  enable_language(CUDA)
  if(NOT CUDAToolkit_FOUND)
    find_package(CUDAToolkit REQUIRED)
  endif()
endif()
