# Resolves the CUDA and NCCL options.
#   PSAQ_CUDA_ENABLED: LibTorch has CUDA (CUDA tensors exist), so device kernels are built.
#   PSAQ_NCCL_ENABLED: the CUDA toolkit (runtime) and NCCL are present. This does not need a CUDA
#     LibTorch: the NCCL backend works on raw device pointers and a CUDA stream, so it compiles (and
#     links) on CPU-only CI machines that have /usr/local/cuda.
set(_torch_has_cuda OFF)
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

if(PSAQ_CUDA_ENABLED)
  enable_language(CUDA)
endif()
