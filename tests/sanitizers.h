// SMYRF_TEST_ASAN is defined when the test binary is built with AddressSanitizer (GCC's
// __SANITIZE_ADDRESS__ or Clang's __has_feature): its malloc replaces glibc's, so tests of
// malloc policy (train/alloc_policy.h) expect the policy to be refused there.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SMYRF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMYRF_TEST_ASAN 1
#endif
#endif
