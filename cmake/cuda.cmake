# CUDA (issue 22), in two independent parts.
#
# 1. The project's own CUDA code (plugins/llama-executor/gpu_runtime_cuda.cu:
#    the staging pool's page-locked memory, the device probe) is compiled by
#    nvcc wherever CMake finds one (/usr/local/cuda/bin/nvcc, or CUDACXX), so
#    every build with nvcc compiles it, and a machine without a GPU runs it
#    (it answers "no GPU" and the executor uses the CPU). MEMOS_CUDA=OFF, or
#    a machine without nvcc, builds gpu_runtime_none.cpp instead; ON makes a
#    missing nvcc an error. Sanitizer-instrumented fuzz and TSan builds keep
#    the plain one (nvcc takes no -fsanitize).
# 2. llama.cpp's CUDA backend comes with the llama.cpp prefix itself:
#    scripts/build-llama builds a CUDA variant where a GPU answers (or with
#    MEMOS_CUDA=on there), and its ggml config says so (GGML_CUDA). Its
#    static libraries then need the CUDA runtime and cuBLAS (the toolkit's
#    shared cuBLAS; the runtime statically, so only the driver is needed at
#    run time) linked in; include() this after find_package(llama).
set(MEMOS_CUDA AUTO CACHE STRING "Compile the project's CUDA code with nvcc: AUTO (where nvcc is found), ON or OFF")
set_property(CACHE MEMOS_CUDA PROPERTY STRINGS AUTO ON OFF)
set(MEMOS_HAVE_CUDA OFF)
if(NOT MEMOS_CUDA STREQUAL "OFF" AND NOT MEMOS_FUZZ AND NOT MEMOS_TSAN)
  if(NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # nvcc runs the C++ compiler the rest of the project uses.
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER} CACHE FILEPATH "")
    if(CCACHE_PROGRAM)
      set(CMAKE_CUDA_COMPILER_LAUNCHER ${memos_ccache})
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(MEMOS_HAVE_CUDA ON)
    message(STATUS "CUDA: nvcc ${CMAKE_CUDA_COMPILER_VERSION} compiles the executor's CUDA code")
  elseif(MEMOS_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MEMOS_CUDA=ON, but no nvcc was found (/usr/local/cuda/bin/nvcc or CUDACXX)")
  else()
    message(STATUS "CUDA: no nvcc; the executor's GPU code is left out (it reports no GPU)")
  endif()
endif()

if(TARGET llama AND GGML_CUDA)
  if(NOT CUDAToolkit_FOUND)
    find_package(CUDAToolkit REQUIRED)
  endif()
  set_property(TARGET llama APPEND PROPERTY INTERFACE_LINK_LIBRARIES
               CUDA::cudart_static CUDA::cublas CUDA::cublasLt)
  message(STATUS "llama.cpp: with its CUDA backend (GGML_CUDA)")
endif()
