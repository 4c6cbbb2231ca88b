# Test binaries, one per folder of tests/, registered with CTest one entry per source file
# (doctest's --source-file filter), so test-case names may contain any characters.
# Labels: unit (core, kernels, layers, ...), gradcheck (tests/gradcheck), slow (tests/slow),
# cuda (tests/cuda: one CTest entry that reports "skipped" when no GPU is present).
find_package(doctest REQUIRED)

add_library(smyrf_test_main STATIC ${PROJECT_SOURCE_DIR}/tests/main.cpp)
target_link_libraries(smyrf_test_main PUBLIC smyrf_lib doctest::doctest)

# CTest runs the test programs side by side (-j), each with its OpenMP threads, so the machine
# is oversubscribed by design; libgomp's default idle spin (~300000 pauses) then steals the time
# slices the other threads need (see core/threading.h). The programs get the short spin the
# smyrf program picks on a busy machine: `ctest -L 'unit|gradcheck' -j2` on the 2-vCPU EPYC took
# 23-37 s with the default spin and 14 s with this one.
set(SMYRF_TEST_OMP_ENV "GOMP_SPINCOUNT=300")

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
  foreach(src ${_srcs})
    # only files that define test cases get an entry (helpers and registries do not)
    file(STRINGS ${src} _cases REGEX "TEST_CASE|SMYRF_GRADCHECK_CASE\\(")
    if(NOT _cases)
      continue()
    endif()
    get_filename_component(_base ${src} NAME)
    get_filename_component(_stem ${src} NAME_WE)
    add_test(NAME ${dir}/${_stem} COMMAND ${_name} --source-file=*/${dir}/${_base}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(${dir}/${_stem} PROPERTIES LABELS ${label} ENVIRONMENT
                                                   "${SMYRF_TEST_OMP_ENV}")
  endforeach()
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
  set_tests_properties(cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 ENVIRONMENT
                                              "${SMYRF_TEST_OMP_ENV}")
endif()
