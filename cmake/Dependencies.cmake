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
