# Every external library comes from a Debian 12 package (scripts/setup installs
# them). llhttp is compiled from the C sources Debian's node-llhttp ships.

find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV    REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(SODIUM   REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(CJSON    REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(SQLITE3  REQUIRED IMPORTED_TARGET sqlite3)

# mbedTLS 2.28 (Debian) ships no pkg-config file; 3.x does. Find it by hand so
# the same code path works for both.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h REQUIRED)
find_library(MBEDTLS_LIB   mbedtls   REQUIRED)
find_library(MBEDX509_LIB  mbedx509  REQUIRED)
find_library(MBEDCRYPTO_LIB mbedcrypto REQUIRED)
add_library(tg_mbedtls INTERFACE)
target_include_directories(tg_mbedtls SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(tg_mbedtls INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})

set(TG_LLHTTP_SRC_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (api.c http.c llhttp.c)")
set(TG_LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "Directory holding llhttp.h")
if(NOT EXISTS ${TG_LLHTTP_SRC_DIR}/llhttp.c OR NOT EXISTS ${TG_LLHTTP_INCLUDE_DIR}/llhttp.h)
  message(FATAL_ERROR "llhttp sources not found in ${TG_LLHTTP_SRC_DIR}: run scripts/setup (installs node-llhttp)")
endif()
add_library(tg_llhttp STATIC
  ${TG_LLHTTP_SRC_DIR}/api.c ${TG_LLHTTP_SRC_DIR}/http.c ${TG_LLHTTP_SRC_DIR}/llhttp.c)
target_include_directories(tg_llhttp SYSTEM PUBLIC ${TG_LLHTTP_INCLUDE_DIR})
set_target_properties(tg_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)

# TG_STATIC_DEPS: the libraries above from their static archives, the C++
# runtime linked in (-static-libstdc++ -static-libgcc); the C library
# (glibc: libc, libm, ld.so) stays shared, so this is not a static binary.
# Fewer shared libraries mean fewer mappings, less relocation data and only
# the library code actually used (with TG_GC_SECTIONS): about 1.8 MiB less
# idle RSS but a 2.6 times larger agent (docs/BENCH.md, "Agent footprint").
# The price: security fixes of those libraries (mbedTLS parses what the
# network sends) need a rebuild of the program, so no port turns it on.
# Archives are searched in the usual library directories and in the cross
# overlay's static folder (scripts/setup-cross: libuv.a, libcjson.a);
# TG_STATIC_<NAME> may name one by hand. A library whose archive is missing
# stays shared, and the configure output says so.
if(TG_STATIC_DEPS)
  set(_tg_static_hints)
  if(TG_CROSS_OVERLAY AND CMAKE_LIBRARY_ARCHITECTURE)
    list(APPEND _tg_static_hints ${TG_CROSS_OVERLAY}/static/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  find_package(Threads REQUIRED)
  set(_tg_static_found)
  set(_tg_static_missing)
  # tg_static_archive(NAME TARGET ARCHIVES a[|b]... [DEPS lib...]): points
  # the imported TARGET at the archives (a|b: either file name) when all are
  # found; otherwise TARGET stays shared.
  function(tg_static_archive name target)
    cmake_parse_arguments(PARSE_ARGV 2 A "" "" "ARCHIVES;DEPS")
    set(paths)
    foreach(a IN LISTS A_ARCHIVES)
      string(REPLACE "|" ";" names "${a}")
      list(GET names 0 first)
      string(MAKE_C_IDENTIFIER "TG_STATIC_${first}" var)
      string(TOUPPER "${var}" var)
      find_library(${var} NAMES ${names} HINTS ${_tg_static_hints})
      if(NOT ${var})
        string(REPLACE "|" " or " either "${a}")
        set(_tg_static_missing ${_tg_static_missing} "${name} (no ${either})" PARENT_SCOPE)
        return()
      endif()
      list(APPEND paths ${${var}})
    endforeach()
    set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES ${paths} ${A_DEPS})
    set(_tg_static_found ${_tg_static_found} ${name} PARENT_SCOPE)
  endfunction()
  # Debian names libuv's archive libuv_a.a. The C library's own parts
  # (pthread, dl, rt) are in libc.so.6 since glibc 2.34: no stub library is
  # named (Threads::Threads is empty there).
  tg_static_archive(libuv PkgConfig::LIBUV ARCHIVES "libuv_a.a|libuv.a" DEPS Threads::Threads)
  tg_static_archive(libsodium PkgConfig::SODIUM ARCHIVES libsodium.a DEPS Threads::Threads)
  tg_static_archive(cJSON PkgConfig::CJSON ARCHIVES libcjson.a DEPS m)
  tg_static_archive(SQLite PkgConfig::SQLITE3 ARCHIVES libsqlite3.a DEPS m Threads::Threads)
  tg_static_archive(mbedTLS tg_mbedtls ARCHIVES libmbedtls.a libmbedx509.a libmbedcrypto.a)
  list(JOIN _tg_static_found ", " _found)
  message(STATUS "TG_STATIC_DEPS: static: ${_found}; C++ runtime linked in")
  if(_tg_static_missing)
    list(JOIN _tg_static_missing ", " _missing)
    message(STATUS "TG_STATIC_DEPS: still shared, no static archive found: ${_missing}")
  endif()
  add_link_options(-static-libstdc++ -static-libgcc)
endif()
