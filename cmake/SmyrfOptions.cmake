# Compiler flags, dependencies and the AVX2 translation units.
# ccache (when installed) makes rebuilds and extra build trees (sanitizers, helpers) cheap.
find_program(SMYRF_CCACHE ccache)
if(SMYRF_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${SMYRF_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${SMYRF_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${SMYRF_CCACHE})
endif()

find_package(OpenMP REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# stb (Debian's libstb-dev): image decoding and PNG writing; the library carries the implementations.
find_path(SMYRF_STB_INCLUDE stb_image.h PATH_SUFFIXES stb REQUIRED)
find_library(SMYRF_STB_LIBRARY stb REQUIRED)

if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  add_compile_options(-Wall -Wextra -Wno-unused-parameter)
  if(CMAKE_BUILD_TYPE STREQUAL "Release")
    add_compile_options(-O3)
  endif()
endif()

if(SMYRF_SANITIZE)
  # -O1 keeps sanitizer builds fast enough for CI while still catching what they are for.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1)
  add_link_options(-fsanitize=address,undefined)
endif()

# AVX2/FMA: only files named *_avx2.cpp get the ISA flags, so the rest of the binary runs on any
# x86-64 and the variant is chosen at run time from cpuid (kernels/cpu/cpu_features.h).
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-mavx2 -mfma" SMYRF_COMPILER_HAS_AVX2)
if(SMYRF_COMPILER_HAS_AVX2)
  set(SMYRF_AVX2_STATUS "compiled (used when cpuid reports AVX2+FMA)")
  add_compile_definitions(SMYRF_HAVE_AVX2_BUILD=1)
else()
  set(SMYRF_AVX2_STATUS "not available in this compiler")
endif()

function(smyrf_apply_avx2_flags sources)
  if(NOT SMYRF_COMPILER_HAS_AVX2)
    return()
  endif()
  foreach(src ${sources})
    if(src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    endif()
  endforeach()
endfunction()

function(smyrf_print_summary)
  message(STATUS "smyrf configuration:")
  message(STATUS "  build type : ${CMAKE_BUILD_TYPE}")
  message(STATUS "  AVX2+FMA   : ${SMYRF_AVX2_STATUS}")
  message(STATUS "  CUDA       : ${SMYRF_CUDA_STATUS}")
  message(STATUS "  cuBLAS     : ${SMYRF_CUBLAS_STATUS}")
  message(STATUS "  cuDNN      : ${SMYRF_CUDNN_STATUS}")
  message(STATUS "  sanitizers : ${SMYRF_SANITIZE}")
endfunction()
