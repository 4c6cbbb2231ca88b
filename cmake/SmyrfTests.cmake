# Test binaries, one per folder of tests/, registered with CTest test case by test case.
# Labels: unit (core, kernels, layers, ...), gradcheck (tests/gradcheck), slow (tests/slow),
# cuda (tests/cuda: one CTest entry that reports "skipped" when no GPU is present).
find_package(doctest REQUIRED)
include(/usr/lib/cmake/doctest/doctest.cmake OPTIONAL RESULT_VARIABLE _doctest_module)
if(NOT _doctest_module)
  include(doctest)
endif()

add_library(smyrf_test_main STATIC ${PROJECT_SOURCE_DIR}/tests/main.cpp)
target_link_libraries(smyrf_test_main PUBLIC smyrf_lib doctest::doctest)

function(smyrf_test_suite dir label)
  file(GLOB _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${dir}/*.cpp)
  if(NOT _srcs)
    return()
  endif()
  set(_name test_${dir})
  add_executable(${_name} ${_srcs})
  target_link_libraries(${_name} PRIVATE smyrf_test_main smyrf_bench)
  target_include_directories(${_name} SYSTEM PRIVATE ${SMYRF_STB_INCLUDE})
  smyrf_apply_avx2_flags("${_srcs}")
  doctest_discover_tests(${_name} PROPERTIES LABELS ${label} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    ADD_LABELS 0)
endfunction()

foreach(dir core kernels autograd layers attention models data train apps)
  smyrf_test_suite(${dir} unit)
endforeach()
smyrf_test_suite(gradcheck gradcheck)
smyrf_test_suite(slow slow)

file(GLOB _cuda_tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda/*.cpp)
if(_cuda_tests)
  add_executable(test_cuda ${_cuda_tests})
  target_link_libraries(test_cuda PRIVATE smyrf_lib doctest::doctest)
  target_compile_definitions(test_cuda PRIVATE SMYRF_CUDA_TEST_BINARY=1)
  add_test(NAME cuda COMMAND test_cuda)
  set_tests_properties(cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)
endif()
