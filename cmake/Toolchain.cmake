# Compiler flags shared by every target of ours: warnings, sanitizers, fuzzing.
# Third-party sources (llhttp) are compiled without our warning set.

set(TG_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wconversion
    -Wsign-conversion -Wnull-dereference -Wdouble-promotion -Wformat=2
    -Wimplicit-fallthrough)
if(TG_WERROR)
  list(APPEND TG_WARNINGS -Werror)
endif()

# Applies our warning set and language rules to one of our own targets.
function(tg_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${TG_WARNINGS}>)
  target_compile_features(${target} PUBLIC cxx_std_17)
endfunction()

# TG_LTO: GCC's link-time optimisation for tokengo-agent and tokengo-hub.
# The whole program is optimised at once: code inlined across our libraries
# and the parts of them a program does not reach dropped. The x86_64 agent
# goes from 1,170 to 738 KiB (docs/BENCH.md, "Agent footprint"). Every
# object is "fat" (GIMPLE for the programs' LTO link and machine code for
# everything else), so the test binaries link as fast as without LTO and
# run the code the compiler generated for the same sources: they link with
# -fno-lto (tests/CMakeLists.txt; GCC's driver drops its linker plugin when
# -fno-lto is anywhere on the line, so it cannot be a global option that the
# programs override). The device ports turn it on
# (ports/cmake/debian-cross.cmake).
if(TG_LTO)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR TG_SANITIZE OR TG_FUZZ)
    message(FATAL_ERROR "TG_LTO needs GCC and a build without sanitizers or fuzzing")
  endif()
  add_compile_options(-flto=auto -ffat-lto-objects)
  # Archives of LTO objects need the plugin's symbol index: gcc-ar.
  if(CMAKE_CXX_COMPILER_AR)
    set(CMAKE_AR "${CMAKE_CXX_COMPILER_AR}")
    set(CMAKE_RANLIB "${CMAKE_CXX_COMPILER_RANLIB}")
  endif()
endif()

# One of the two programs: tg_target, and with TG_LTO its link-time
# optimisation.
function(tg_program target)
  tg_target(${target})
  if(TG_LTO)
    target_link_options(${target} PRIVATE -flto=auto)
  endif()
endfunction()

if(TG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(TG_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TG_FUZZ needs clang: configure with the 'fuzz' preset")
  endif()
  # Everything is instrumented for coverage; only fuzz targets link the driver.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# TG_EXCEPTIONS off (the default): C++ is compiled with -fno-exceptions.
# Nothing here throws or catches: errors travel as Status/Result, and an
# exception escaping a callback aborted the daemon anyway
# (detail::run_guarded, shared/core/loop.h); the standard library still
# calls std::terminate where it would throw (bad_alloc). Without the
# exception tables and landing pads the stripped x86_64 agent is 10 % smaller
# (docs/BENCH.md, "Agent footprint").
if(NOT TG_EXCEPTIONS)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions>)
endif()

# TG_UNWIND_TABLES off: no .eh_frame either (7 % more). Without exceptions
# only a backtrace needs them: gdb reads the debug info of an unstripped
# build, ASan unwinds by frame pointers. The device ports turn them off
# (ports/cmake/debian-cross.cmake); native builds keep them.
if(NOT TG_UNWIND_TABLES AND NOT TG_EXCEPTIONS AND NOT TG_SANITIZE AND NOT TG_FUZZ)
  add_compile_options(-fno-asynchronous-unwind-tables -fno-unwind-tables)
endif()

# TG_GC_SECTIONS: every function and object in a section of its own, and the
# linker keeps only the sections reachable from the program: unused code of
# our libraries (a program links only part of shared/) is dropped. The agent
# is 15 % smaller at -O2 (docs/BENCH.md, "Agent footprint"). Not in Debug,
# sanitizer or fuzz builds, where the size does not matter.
if(TG_GC_SECTIONS AND NOT TG_SANITIZE AND NOT TG_FUZZ)
  add_compile_options("$<$<NOT:$<CONFIG:Debug>>:-ffunction-sections;-fdata-sections>")
  add_link_options("$<$<NOT:$<CONFIG:Debug>>:LINKER:--gc-sections>")
endif()
