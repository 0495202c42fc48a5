# The POOLER_FUZZ=ON tree, included from the top-level CMakeLists.txt (which stops right after): protocol/,
# config/ and the libFuzzer targets of tests/fuzz/, nothing else. scripts/fuzz.sh configures it as
#   CC=clang CXX=clang++ cmake -S . -B build/fuzz -DPOOLER_FUZZ=ON
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "POOLER_FUZZ=ON needs clang (libFuzzer): configure a fresh tree with CC=clang CXX=clang++ "
                      "(got ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION})")
endif()
if(POOLER_SANITIZE)
  message(FATAL_ERROR "POOLER_FUZZ=ON brings its own sanitizers; leave POOLER_SANITIZE off")
endif()

# Assertions stay on (no NDEBUG: they are our own invariants) and -O1 keeps the sanitizers' reports readable.
set(CMAKE_BUILD_TYPE Fuzz CACHE STRING "Build type" FORCE)
set(CMAKE_CXX_FLAGS_FUZZ "-O1 -g -fno-omit-frame-pointer")
set(CMAKE_C_FLAGS_FUZZ "-O1 -g -fno-omit-frame-pointer")

# Everything compiled here gets the coverage hooks and ASan+UBSan; only the targets link libFuzzer's main
# (tests/fuzz/CMakeLists.txt adds -fsanitize=fuzzer to them). A UBSan report aborts like a crash.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fsanitize-ignorelist=${PROJECT_SOURCE_DIR}/tests/fuzz/ubsan_ignorelist.txt)
add_link_options(-fsanitize=address,undefined)

# GCC 12's libstdc++ hides std::expected from clang 14 (tests/fuzz/compat/expected says why); the stand-in is
# used only when the real one is missing.
include(CheckCXXSourceCompiles)
check_cxx_source_compiles("#include <expected>
int main() { std::expected<int, int> e{1}; return *e - 1; }" POOLER_HAVE_STD_EXPECTED)
if(NOT POOLER_HAVE_STD_EXPECTED)
  include_directories(BEFORE SYSTEM ${PROJECT_SOURCE_DIR}/tests/fuzz/compat)
endif()

find_package(fmt REQUIRED)
find_package(OpenSSL REQUIRED)

# toml++ is compiled into the config target from its headers instead of linking Debian's libtomlplusplus.so,
# so the fuzzer gets coverage (and the sanitizers get a view) inside the TOML parser too. Defining the target
# first makes find_package(tomlplusplus) keep it, and config/CMakeLists.txt links it as usual.
# Its internal assertions are compiled out, as in the library Debian ships (built with NDEBUG), which is what
# the daemon runs: toml++ 3.3.0 asserts on some inputs (a NUL right after '[') that release builds answer with
# a clean parse error; corpus/config/repro-toml-nul-in-table-header keeps that answer checked.
add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
target_compile_definitions(tomlplusplus::tomlplusplus INTERFACE TOML_HEADER_ONLY=1)
# A function-style macro, which CMake only passes on as a raw option.
target_compile_options(tomlplusplus::tomlplusplus INTERFACE "-DTOML_ASSERT(expr)=static_assert(true)")
find_package(tomlplusplus REQUIRED)

add_subdirectory(protocol)
add_subdirectory(config)
add_subdirectory(tests/fuzz)
